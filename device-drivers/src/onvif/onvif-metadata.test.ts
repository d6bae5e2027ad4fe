import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decodeVideoAnalyticsFrame,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
} from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OnvifCamera } from '../../../simulators/src/camera/onvif/index.ts';
import { describeDriverContract } from '../contract.ts';
import type { Driver, DriverFault } from '../driver.ts';
import { DigestAuthenticator } from '../gb28181/sip/digest.ts';
import { nextReading } from '../testing/driver-events.ts';
import { ONVIF_ANALYTICS_ALGORITHM } from './metadata-poller.ts';
import { ONVIF_METRICS, OnvifDriver, type OnvifDriverOptions } from './onvif-driver.ts';

const USER = 'citysense';
const PASSWORD = 's3cret!';

/** The next analytics frame of `driver` that satisfies `match`. */
async function nextFrame(
  driver: Driver,
  match: (f: VideoAnalyticsFrame) => boolean = () => true,
): Promise<VideoAnalyticsFrame> {
  let frame: VideoAnalyticsFrame | undefined;
  await nextReading(driver, (r) => {
    if (r.metric !== VIDEO_ANALYTICS_METRIC || !(r.value instanceof Uint8Array)) return false;
    const decoded = decodeVideoAnalyticsFrame(r.value);
    if (!match(decoded)) return false;
    frame = decoded;
    return true;
  });
  return frame ?? expect.fail('no frame');
}

/** Every fault of `driver`, and a way to await the next one. */
function faultLog(driver: Driver): { faults: DriverFault[]; next: () => Promise<DriverFault> } {
  const faults: DriverFault[] = [];
  let waiters: Array<(f: DriverFault) => void> = [];
  driver.on('fault', (f) => {
    faults.push(f);
    const ws = waiters;
    waiters = [];
    for (const w of ws) w(f);
  });
  return { faults, next: () => new Promise((resolve) => waiters.push(resolve)) };
}

/** An HTTP server on port 0 whose answer a test swaps, counting the requests it served. */
class StubEndpoint {
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  requests = 0;
  readonly #server: Server = createServer((req, res) => {
    this.requests++;
    this.handler(req, res);
    this.#server.emit('served');
  });

  async start(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/metadata`;
  }

  /** Resolves once `count` more requests have been served. */
  async served(count: number): Promise<void> {
    const target = this.requests + count;
    while (this.requests < target) await once(this.#server, 'served');
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const PERSON = {
  objectId: 9,
  classes: [{ type: 'Human', likelihood: 0.7 }],
  box: { left: 0.1, top: 0.1, right: 0.2, bottom: 0.4 },
};

const xml = (res: ServerResponse, body: string) =>
  res.writeHead(200, { 'content-type': 'application/xml' }).end(body);

describe('ONVIF driver: camera analytics (Profile M metadata)', () => {
  const camera = new OnvifCamera({ username: USER, password: PASSWORD, discovery: false });
  const stub = new StubEndpoint();
  const drivers: OnvifDriver[] = [];
  const make = (options: Partial<OnvifDriverOptions> = {}): OnvifDriver => {
    const driver = new OnvifDriver({
      id: 'cam-north',
      hostname: '127.0.0.1',
      port: camera.port,
      username: USER,
      password: PASSWORD,
      onlineIntervalMs: 1000,
      ...options,
    });
    drivers.push(driver);
    return driver;
  };

  beforeAll(async () => {
    await camera.start();
    await stub.start();
  });
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.stop()));
  });
  afterAll(async () => {
    await stub.stop();
    await camera.stop();
  });

  it("emits the camera's objects as analytics frames: 0..1 boxes, ONVIF types as lower-case labels", async () => {
    const driver = make({ metadata: { url: camera.metadataUrl, intervalMs: 20 } });
    const first = nextFrame(driver);
    await driver.start();
    expect(driver.devices()[0]?.metrics).toContainEqual({ name: VIDEO_ANALYTICS_METRIC, type: 'bytes' });

    const frame = await first;
    expect(frame).toMatchObject({
      source: 'cam-north',
      algorithmId: ONVIF_ANALYTICS_ALGORITHM,
      algorithmVersion: 'SimCam/1.0.0-sim',
      // The selected profile's resolution.
      frameWidth: 320,
      frameHeight: 240,
    });
    expect(frame.objects).toHaveLength(1);
    const [person] = frame.objects;
    expect(person).toMatchObject({ label: 'person', objectId: 1 });
    expect(person?.likelihood).toBeCloseTo(0.87, 5);
    // The simulator writes −1..1 y-up boxes (ONVIF default); they arrive top-left 0..1.
    const box = person?.box;
    expect([box?.left, box?.top, box?.right, box?.bottom].map((v) => Number(v?.toFixed(4)))).toEqual([
      0.25, 0.2, 0.5, 0.9,
    ]);

    camera.setAnalyticsObjects([
      {
        objectId: 4,
        classes: [
          { type: 'Human', likelihood: 0.2 },
          { type: 'Vehicle', likelihood: 0.95 },
        ],
        box: { left: 0, top: 0.5, right: 0.4, bottom: 1 },
      },
      {
        objectId: 5,
        classes: [{ type: 'LicensePlate', likelihood: 0.6 }],
        box: { left: 0.1, top: 0.8, right: 0.2, bottom: 0.85 },
      },
      {
        objectId: 6,
        classes: [{ type: 'Drone', likelihood: 0.5 }],
        box: { left: 0.7, top: 0, right: 0.8, bottom: 0.1 },
      },
    ]);
    const changed = await nextFrame(driver, (f) => f.objects.length === 3);
    expect(changed.objects.map((o) => [o.objectId, o.label])).toEqual([
      [4, 'vehicle'],
      [5, 'license plate'],
      [6, 'drone'], // a type outside the table keeps its own name, in lower case
    ]);
    expect(changed.utcTimeMs).toBeGreaterThan(frame.utcTimeMs);
    for (const o of changed.objects)
      for (const v of [o.box.left, o.box.top, o.box.right, o.box.bottom]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
  });

  it('reads 0..1 documents when configured so, and emits a frame once however often it is served', async () => {
    const utc = new Date('2026-05-01T10:00:00.000Z');
    let doc = camera.metadataDocument({ normalisation: 'unit', utcTime: utc, objects: [PERSON] });
    stub.handler = (_req, res) => xml(res, doc);
    const driver = make({ metadata: { url: stub.url, intervalMs: 10, normalisation: 'unit' } });
    const frames: VideoAnalyticsFrame[] = [];
    driver.on('readings', (batch) => {
      for (const r of batch)
        if (r.metric === VIDEO_ANALYTICS_METRIC)
          frames.push(decodeVideoAnalyticsFrame(r.value as Uint8Array));
    });
    await driver.start();
    await stub.served(5);
    expect(frames.map((f) => f.utcTimeMs)).toEqual([utc.getTime()]);
    expect(frames[0]?.objects[0]?.box.left).toBeCloseTo(0.1, 4);

    const next = nextFrame(driver);
    doc = camera.metadataDocument({ normalisation: 'unit', utcTime: new Date(utc.getTime() + 100) });
    expect((await next).utcTimeMs).toBe(utc.getTime() + 100);
  });

  it('answers a Digest (or Basic) challenge of the metadata endpoint with the camera credentials', async () => {
    const digest = new DigestAuthenticator('camera');
    let scheme: 'digest' | 'basic' = 'digest';
    const authorised: string[] = [];
    stub.handler = (req, res) => {
      const auth = req.headers.authorization;
      const ok =
        scheme === 'digest'
          ? digest.verify(auth, 'GET', (u) => (u === USER ? PASSWORD : undefined)).ok
          : auth === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      if (!ok) {
        const challenge = scheme === 'digest' ? digest.challenge() : 'Basic realm="camera"';
        res.writeHead(401, { 'www-authenticate': challenge }).end();
        return;
      }
      authorised.push(auth?.split(' ')[0] ?? '');
      xml(res, camera.metadataDocument({ objects: [PERSON] }));
    };
    const driver = make({ metadata: { url: stub.url, intervalMs: 10 } });
    const faults = faultLog(driver);
    const first = nextFrame(driver);
    await driver.start();
    expect((await first).objects[0]?.label).toBe('person');
    await stub.served(3);
    expect(authorised.every((s) => s === 'Digest')).toBe(true);

    scheme = 'basic';
    const afterSwitch = authorised.length;
    await nextFrame(driver, () => authorised.slice(afterSwitch).includes('Basic'));
    expect(faults.faults).toEqual([]);
  });

  it('reports garbage metadata once per outage as CS_ERR_ONVIF_METADATA while the other readings go on', async () => {
    let mode: 'garbage' | 'good' | 'down' = 'garbage';
    stub.handler = (_req, res) => {
      if (mode === 'garbage') xml(res, '<tt:MetadataStream><tt:VideoAnalytics><tt:Frame');
      else if (mode === 'down') res.writeHead(500).end('oops');
      else xml(res, camera.metadataDocument());
    };
    const driver = make({ metadata: { url: stub.url, intervalMs: 10 } });
    const faults = faultLog(driver);
    const firstFault = faults.next();
    await driver.start();
    expect(await firstFault).toMatchObject({ device: 'cam-north', code: 'CS_ERR_ONVIF_METADATA' });
    expect((await firstFault).message).toMatch(/not well-formed XML/);

    const motion = nextReading(driver, (r) => r.metric === ONVIF_METRICS.motion && r.value === true);
    camera.raiseMotion(true);
    await motion;
    camera.raiseMotion(false);
    await stub.served(5);
    expect(faults.faults).toHaveLength(1); // still the same outage

    mode = 'good';
    await nextFrame(driver);
    const secondFault = faults.next();
    mode = 'down';
    expect(await secondFault).toMatchObject({ code: 'CS_ERR_ONVIF_METADATA' });
    expect((await secondFault).message).toMatch(/HTTP 500/);
    await stub.served(3);
    expect(faults.faults).toHaveLength(2);
  });

  it('leaves metadata off without a URL, though the camera advertises a metadata configuration', async () => {
    const driver = make();
    await driver.start();
    expect(driver.describeCamera().metadataAdvertised).toBe(true);
    expect(driver.devices()[0]?.metrics.map((m) => m.name)).not.toContain(VIDEO_ANALYTICS_METRIC);
  });

  it('refuses invalid metadata options at start with CS_ERR_ONVIF_CONFIG, naming every problem', async () => {
    const driver = make({
      metadata: { url: 'ftp://camera/metadata', intervalMs: 0, normalisation: 'pixels' as 'unit' },
    });
    const failure = driver.start();
    await expect(failure).rejects.toMatchObject({ code: 'CS_ERR_ONVIF_CONFIG' });
    await expect(failure).rejects.toThrow(/metadata\.url.*metadata\.intervalMs.*metadata\.normalisation/);
  });

  describeDriverContract('OnvifDriver + camera analytics', () =>
    make({ id: 'cam-contract', onlineIntervalMs: 20, metadata: { url: camera.metadataUrl, intervalMs: 10 } }),
  );
});
