/**
 * The console's one translation table: zh-CN (default) and English. Keys are English
 * identifiers; `{name}` placeholders are filled by `t()`. The choice is kept in
 * localStorage. Dates are always shown in the browser's local time zone.
 */
import { signal } from './signal.ts';

/** Languages the console speaks. */
export type Lang = 'zh-CN' | 'en';

const zh = {
  'app.title': 'citysense 城市感知',
  'app.skip': '跳到主要内容',
  'lang.switch': 'English',
  'lang.switchLabel': '切换到英文',
  'nav.label': '主导航',
  'nav.menu': '菜单',
  'nav.map': '地图',
  'nav.fleet': '边缘节点',
  'nav.ledger': '感知设备台账',
  'nav.reuse': '共享复用',
  'nav.carriers': '杆体载体',
  'nav.catalogue': '数据目录',
  'nav.review': '联合审查',
  'nav.algorithms': '算法中心',
  'nav.deployments': '算法部署',
  'nav.video': '视频',
  'nav.operations': '运维',
  'nav.group.everyone': '总览',
  'nav.group.field': '现场运维',
  'nav.group.agency': '委办局',
  'nav.group.review': '审查',
  'nav.group.algorithms': '算法中心',
  'nav.group.ops': '平台运维',
  'header.nodesOnline': '在线节点',
  'header.alarmsOpen': '未关闭告警',
  'header.ingest': '入库速率',
  'header.perSecond': '{n} 条/秒',
  'header.live': '实时',
  'header.offline': '实时连接中断，正在重连…',
  'header.signOut': '退出',
  'header.admin': '平台管理员令牌',
  'login.title': '登录',
  'login.subtitle': '城市感知平台控制台',
  'login.username': '用户名',
  'login.password': '密码',
  'login.submit': '登录',
  'login.busy': '正在登录…',
  'login.token': 'API 令牌或管理员令牌',
  'login.withToken': '使用令牌登录',
  'login.withPassword': '使用用户名和密码登录',
  'login.expired': '会话已结束，请重新登录。',
  'state.loading': '正在加载…',
  'state.empty': '暂无数据',
  'state.retry': '重试',
  'error.title': '请求失败',
  'error.code': '错误码',
  'error.todo': '处理建议',
  'error.hint.400': '请检查填写的内容后重试。',
  'error.hint.401': '登录已失效，请重新登录。',
  'error.hint.403': '您的角色无权执行此操作，请联系平台管理员授予角色。',
  'error.hint.404': '对象不存在或已被删除，请刷新列表。',
  'error.hint.409': '与现有数据冲突，请刷新后再试。',
  'error.hint.429': '尝试过于频繁，请稍后再试。',
  'error.hint.5xx': '平台内部错误，请稍后重试，并把错误码告诉运维人员（见平台日志）。',
  'error.hint.network': '无法连接平台，请检查网络或平台是否在运行。',
  'error.hint.other': '请稍后重试；如持续出现，请把错误码告诉运维人员。',
  'error.hint.CS_ERR_AUTH_LOGIN_FAILED': '请检查用户名和密码；连续失败五次后账号将被锁定一分钟。',
  'error.hint.CS_ERR_AUTH_LOCKED': '失败次数过多，账号已被临时锁定，请稍后再试。',
  'error.hint.CS_ERR_AUTH_FORBIDDEN': '您的角色无权执行此操作，请联系平台管理员授予所需角色。',
  'error.hint.CS_ERR_LEDGER_DUPLICATE':
    '附近已有同类在用设备：请在设备页选择复用，或说明必须新建的理由，再提交审查。',
  'error.hint.CS_ERR_LEDGER_NOT_REVIEWED': '设备所在的建设项目尚未通过联合审查，通过后才能投入运行。',
  'error.hint.CS_ERR_REVIEW_COMMENT': '驳回时请填写审查意见，说明理由。',
  'error.hint.CS_ERR_REVIEW_DECIDED': '该类别已有审查决定（可能是同事刚刚作出），请刷新查看。',
  'soon.title': '{page}：本版本即将上线',
  'soon.body': '该页面正在建设中，将在本版本中提供。现在可以通过 API 使用这些功能：',
  'soon.api': 'API 文档',
  'soon.roles': '可访问的角色：{roles}',
  'role.platform-admin': '平台管理员',
  'role.agency-operator': '委办局操作员',
  'role.reviewer': '审查人员',
  'role.algorithm-admin': '算法中心管理员',
  'role.field-engineer': '现场工程师',
  'notFound.title': '页面不存在',
  'notFound.back': '返回地图',
  'map.title': '感知地图',
  'map.filters': '筛选',
  'map.kind': '类型',
  'map.agency': '权属单位',
  'map.district': '行政区',
  'map.all': '全部',
  'map.kind.pole': '杆体',
  'map.kind.gateway': '边缘网关',
  'map.kind.sensor': '传感器',
  'map.kind.camera': '摄像机',
  'map.status.ok': '正常/在线',
  'map.status.warn': '待审/维护',
  'map.status.bad': '离线/故障',
  'map.status.unknown': '未知',
  'map.legend': '图例',
  'map.points': '{shown} / {total} 个点位',
  'map.zoomIn': '放大',
  'map.zoomOut': '缩小',
  'map.reset': '复位',
  'map.canvasLabel': '地图。方向键平移，加号/减号缩放，回车选中中心点位。',
  'map.cluster': '{n} 个点位，点击放大',
  'map.details': '详情',
  'map.close': '关闭',
  'map.layer': '图层',
  'map.layerFailed': '{layer} 未加载',
  'map.noDistrict': '区外',
  'map.field.id': '编号',
  'map.field.kind': '类型',
  'map.field.status': '状态',
  'map.field.agency': '权属单位',
  'map.field.district': '行政区',
  'map.field.position': '位置 (WGS84)',
  'map.field.updated': '更新时间',
  'map.attribution.grid': '底图：WGS84 经纬网与示意行政区界（内置，离线）',
  'map.refresh': '刷新',
  'fact.poleKind': '杆体类型',
  'fact.address': '地址',
  'fact.freeSlots': '空余挂载位',
  'fact.freePower': '空余功率',
  'fact.gateways': '边缘网关',
  'fact.pole': '所在杆体',
  'fact.agent': '代理版本',
  'fact.devices': '在线设备',
  'fact.deviceKind': '设备类型',
  'fact.vendor': '厂商',
  'fact.gb35114': 'GB 35114 等级',
  'fact.device': '所属设备',
} as const;

/** A translation key. */
export type MessageKey = keyof typeof zh;

const en: Record<MessageKey, string> = {
  'app.title': 'citysense',
  'app.skip': 'Skip to main content',
  'lang.switch': '中文',
  'lang.switchLabel': 'Switch to Chinese',
  'nav.label': 'Main navigation',
  'nav.menu': 'Menu',
  'nav.map': 'Map',
  'nav.fleet': 'Fleet',
  'nav.ledger': 'Ledger',
  'nav.reuse': 'Reuse',
  'nav.carriers': 'Carriers',
  'nav.catalogue': 'Catalogue',
  'nav.review': 'Review inbox',
  'nav.algorithms': 'Algorithms',
  'nav.deployments': 'Deployments',
  'nav.video': 'Video',
  'nav.operations': 'Operations',
  'nav.group.everyone': 'Overview',
  'nav.group.field': 'Field',
  'nav.group.agency': 'Agency',
  'nav.group.review': 'Review',
  'nav.group.algorithms': 'Algorithm centre',
  'nav.group.ops': 'Platform',
  'header.nodesOnline': 'Nodes online',
  'header.alarmsOpen': 'Alarms open',
  'header.ingest': 'Ingest',
  'header.perSecond': '{n}/s',
  'header.live': 'Live',
  'header.offline': 'Live updates interrupted, reconnecting…',
  'header.signOut': 'Sign out',
  'header.admin': 'admin token',
  'login.title': 'Sign in',
  'login.subtitle': 'City sensing platform console',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.busy': 'Signing in…',
  'login.token': 'API token or admin token',
  'login.withToken': 'Sign in with a token',
  'login.withPassword': 'Sign in with username and password',
  'login.expired': 'Your session ended; please sign in again.',
  'state.loading': 'Loading…',
  'state.empty': 'Nothing here yet',
  'state.retry': 'Retry',
  'error.title': 'Request failed',
  'error.code': 'Code',
  'error.todo': 'What to do',
  'error.hint.400': 'Check what you entered and try again.',
  'error.hint.401': 'Your session is no longer valid: sign in again.',
  'error.hint.403': 'Your roles do not allow this: ask a platform admin to grant the role.',
  'error.hint.404': 'It does not exist or was deleted: refresh the list.',
  'error.hint.409': 'It conflicts with existing data: refresh and try again.',
  'error.hint.429': 'Too many attempts: wait a moment and try again.',
  'error.hint.5xx': 'The hub failed: try again later and give the code to operations (see the hub log).',
  'error.hint.network': 'The hub cannot be reached: check the network and that the hub is running.',
  'error.hint.other': 'Try again later; if it persists, give the code to operations.',
  'error.hint.CS_ERR_AUTH_LOGIN_FAILED':
    'Check the username and password; after five failed attempts the account is locked for a minute.',
  'error.hint.CS_ERR_AUTH_LOCKED':
    'Too many failed attempts: the account is locked for a while; try again later.',
  'error.hint.CS_ERR_AUTH_FORBIDDEN':
    'Your roles do not allow this: ask a platform admin for the role you need.',
  'error.hint.CS_ERR_LEDGER_DUPLICATE':
    'A standing device of this kind is nearby: reuse it or justify the new build on the device page, then submit.',
  'error.hint.CS_ERR_LEDGER_NOT_REVIEWED':
    "The device's construction project has not passed the joint review yet; it goes live after approval.",
  'error.hint.CS_ERR_REVIEW_COMMENT': 'Say why in the comment when rejecting.',
  'error.hint.CS_ERR_REVIEW_DECIDED':
    'This category was already decided (perhaps by a colleague just now): refresh to see it.',
  'soon.title': '{page}: coming in this release',
  'soon.body': 'This page is being built and ships in this release. Meanwhile its functions are in the API:',
  'soon.api': 'API documentation',
  'soon.roles': 'Roles with access: {roles}',
  'role.platform-admin': 'Platform admin',
  'role.agency-operator': 'Agency operator',
  'role.reviewer': 'Reviewer',
  'role.algorithm-admin': 'Algorithm admin',
  'role.field-engineer': 'Field engineer',
  'notFound.title': 'No such page',
  'notFound.back': 'Back to the map',
  'map.title': 'Sensing map',
  'map.filters': 'Filters',
  'map.kind': 'Kind',
  'map.agency': 'Agency',
  'map.district': 'District',
  'map.all': 'All',
  'map.kind.pole': 'Poles',
  'map.kind.gateway': 'Gateways',
  'map.kind.sensor': 'Sensors',
  'map.kind.camera': 'Cameras',
  'map.status.ok': 'OK / online',
  'map.status.warn': 'Pending / maintenance',
  'map.status.bad': 'Offline / fault',
  'map.status.unknown': 'Unknown',
  'map.legend': 'Legend',
  'map.points': '{shown} / {total} points',
  'map.zoomIn': 'Zoom in',
  'map.zoomOut': 'Zoom out',
  'map.reset': 'Reset',
  'map.canvasLabel': 'Map. Arrow keys pan, plus and minus zoom, Enter selects the point at the centre.',
  'map.cluster': '{n} points, click to zoom in',
  'map.details': 'Details',
  'map.close': 'Close',
  'map.layer': 'Layer',
  'map.layerFailed': '{layer} not loaded',
  'map.noDistrict': 'Outside',
  'map.field.id': 'ID',
  'map.field.kind': 'Kind',
  'map.field.status': 'Status',
  'map.field.agency': 'Agency',
  'map.field.district': 'District',
  'map.field.position': 'Position (WGS84)',
  'map.field.updated': 'Updated',
  'map.attribution.grid': 'Basemap: WGS84 graticule and schematic district outlines (bundled, offline)',
  'map.refresh': 'Refresh',
  'fact.poleKind': 'Pole kind',
  'fact.address': 'Address',
  'fact.freeSlots': 'Free slots',
  'fact.freePower': 'Free power',
  'fact.gateways': 'Gateways',
  'fact.pole': 'Pole',
  'fact.agent': 'Agent version',
  'fact.devices': 'Devices online',
  'fact.deviceKind': 'Device kind',
  'fact.vendor': 'Vendor',
  'fact.gb35114': 'GB 35114 level',
  'fact.device': 'Device',
};

const LANG_KEY = 'citysense.lang';

function initialLang(): Lang {
  const stored = localStorage.getItem(LANG_KEY);
  return stored === 'en' || stored === 'zh-CN' ? stored : 'zh-CN';
}

/** The current language; components that read it re-render when it changes. */
export const lang = signal<Lang>(initialLang());

/** Switches language and remembers it. */
export function setLang(next: Lang): void {
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next;
  lang.set(next);
}

/** Whether `key` is in the table (codes with their own hint). */
export function hasMessage(key: string): key is MessageKey {
  return Object.hasOwn(zh, key);
}

/** Translates `key` in the current language, filling `{name}` placeholders. */
export function t(key: MessageKey, params?: Record<string, string | number>): string {
  const table: Record<MessageKey, string> = lang.get() === 'en' ? en : zh;
  return fill(table[key], params);
}

/** A translator for one page's own table. */
export type Translator<K extends string> = (key: K, params?: Record<string, string | number>) => string;

/**
 * A page's own messages, kept in its folder (`pages/<id>/messages.ts`) so that pages do not
 * all grow this file: `zh` is the default, `en` is type-checked to have every key of `zh`.
 */
export function defineMessages<Z extends Record<string, string>>(
  zhTable: Z,
  enTable: Record<keyof Z, string>,
): Translator<keyof Z & string> {
  return (key, params) => fill((lang.get() === 'en' ? enTable : zhTable)[key], params);
}

function fill(text: string, params?: Record<string, string | number>): string {
  return params ? text.replace(/\{(\w+)\}/g, (_, k: string) => String(params[k] ?? `{${k}}`)) : text;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** A timestamp in local time, in the current language (e.g. 2026/11/23 18:40:05). */
export function formatTime(iso: string | number | Date | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const l = lang.get();
  let f = formats.get(l);
  if (!f) {
    f = new Intl.DateTimeFormat(l, { dateStyle: 'medium', timeStyle: 'medium' });
    formats.set(l, f);
  }
  return f.format(d);
}

/** A number in the current language. */
export function formatNumber(n: number, digits = 0): string {
  return n.toLocaleString(lang.get(), { maximumFractionDigits: digits });
}
