/**
 * A lamp-pole PLC as an OPC UA server (node-opcua OPCUAServer), the stand-in for a real field PLC that
 * the OPC UA driver reads. The `Pole` object under Objects holds `Lamp/Power`, `Lamp/On`,
 * `Cabinet/Temperature`, `Cabinet/DoorOpen` and `Meter/Energy` (string NodeIds `ns=1;s=Pole/Lamp/Power`
 * and so on; analog items carry EngineeringUnits and EURange, OPC 10000-8 §5.3.2). Values are set from
 * the source with a source timestamp every `updateIntervalMs`; a fault can freeze a value or flag it
 * Bad. The server offers security mode None only, anonymous and the configured users.
 */
import { join } from 'node:path';
import { loadNodeOpcua, type NodeOpcua } from '@citysense/device-drivers';
import { CitysenseError, componentLogger, type Logger } from '@citysense/protocol';
import type { OPCUAServer, UAVariable, Variant } from 'node-opcua';
import { SeededRandom } from '../random.ts';
import { type OpcUaSimulatorConfig, resolveOpcUaSimulatorConfig } from './config.ts';
import { LampPolePlc, OPCUA_SIM_POINTS, type OpcUaSimPoint, type PlcValues } from './plc.ts';

/** Faults the simulator can inject into one point. */
export type OpcUaSimFault =
  /** The value stops changing; the status stays Good (a frozen sensor or a hung PLC task). */
  | 'stuck'
  /** The status becomes BadSensorFailure, the value stays the last one. */
  | 'bad';

/** How to build an OPC UA simulator. */
export interface OpcUaSimulatorInit {
  /** Options, validated by `start` against OpcUaSimulatorConfig. */
  config?: Partial<OpcUaSimulatorConfig> | Record<string, unknown>;
  /** Clock in ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

interface Running {
  server: OPCUAServer;
  variables: Map<OpcUaSimPoint, UAVariable>;
  namespaceIndex: number;
  timer: NodeJS.Timeout;
}

const POINTS = Object.keys(OPCUA_SIM_POINTS) as OpcUaSimPoint[];

/** The OPC UA lamp-pole PLC simulator. Start it, read `endpointUrl`, point a client at it. */
export class OpcUaSimulator {
  readonly #input: unknown;
  readonly #now: () => number;
  readonly #log: Logger;
  #config: Readonly<OpcUaSimulatorConfig> | undefined;
  #plc: LampPolePlc | undefined;
  #values: PlcValues | undefined;
  #lastTime = Number.NEGATIVE_INFINITY;
  #port: number | undefined;
  #running: Running | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #faults = new Map<OpcUaSimPoint, OpcUaSimFault>();
  #opcua: NodeOpcua | undefined;

  constructor(init: OpcUaSimulatorInit = {}) {
    this.#input = init.config ?? {};
    this.#now = init.now ?? Date.now;
    this.#log = componentLogger('opcua-sim', init.logger);
  }

  /** `opc.tcp://host:port` of the running server; throws CS_ERR_OPCUA_SIM_STOPPED before the first start. */
  get endpointUrl(): string {
    if (this.#port === undefined || !this.#config) {
      throw new CitysenseError(
        'CS_ERR_OPCUA_SIM_STOPPED',
        'start the OPC UA simulator before asking for its endpoint',
        409,
      );
    }
    return `opc.tcp://${this.#config.hostname}:${this.#port}`;
  }

  /** The NodeId of `point` in string form, e.g. `ns=1;s=Pole/Lamp/Power`. */
  nodeId(point: OpcUaSimPoint): string {
    return `ns=${this.#running?.namespaceIndex ?? 1};s=${OPCUA_SIM_POINTS[point].path}`;
  }

  /** The NodeId of the `Pole` object, the root to browse. */
  get rootNodeId(): string {
    return `ns=${this.#running?.namespaceIndex ?? 1};s=Pole`;
  }

  /** Current values of every point (undefined before the first start). */
  get values(): Readonly<PlcValues> | undefined {
    return this.#values;
  }

  /** Starts the server (on the same port as before after a stop). Idempotent. */
  start(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted)
      return Promise.reject(new CitysenseError('CS_ERR_ABORTED', 'OPC UA simulator start cancelled', 499));
    if (this.#running) return Promise.resolve();
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Shuts the server down, dropping every client connection. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      await this.#starting?.catch(() => undefined);
      const running = this.#running;
      this.#running = undefined;
      if (!running) return;
      clearInterval(running.timer);
      await running.server.shutdown(0);
      this.#log.info({ port: this.#port }, 'OPC UA simulator stopped');
    })().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  /** Injects `fault` into `point` until `clearFault`. */
  injectFault(point: OpcUaSimPoint, fault: OpcUaSimFault): void {
    this.#faults.set(point, fault);
    const variable = this.#running?.variables.get(point);
    if (fault === 'bad' && variable && this.#opcua) {
      const time = this.#stamp();
      variable.setValueFromSource(
        this.#variant(point),
        this.#opcua.StatusCodes.BadSensorFailure,
        new Date(time),
      );
    }
    this.#log.info({ point, fault }, 'OPC UA simulator fault injected');
  }

  /** Ends any fault of `point`; the next update sets it Good again. */
  clearFault(point: OpcUaSimPoint): void {
    this.#faults.delete(point);
  }

  async #start(): Promise<void> {
    if (this.#stopping) await this.#stopping;
    this.#config ??= resolveOpcUaSimulatorConfig(this.#input);
    this.#opcua ??= await loadNodeOpcua(this.#log);
    const config = this.#config;
    const opcua = this.#opcua;
    if (!this.#plc) {
      this.#plc = new LampPolePlc(new SeededRandom(config.seed), config.longitude);
      this.#values = this.#plc.step(this.#stamp());
    }
    const users = config.users;
    const server = new opcua.OPCUAServer({
      port: this.#port ?? config.port,
      hostname: config.hostname,
      nodeset_filename: [opcua.nodesets.standard],
      serverCertificateManager: new opcua.OPCUACertificateManager({
        rootFolder: join(config.pkiFolder, 'server'),
        automaticallyAcceptUnknownCertificate: true,
      }),
      userCertificateManager: new opcua.OPCUACertificateManager({
        rootFolder: join(config.pkiFolder, 'user'),
        automaticallyAcceptUnknownCertificate: true,
      }),
      securityModes: [opcua.MessageSecurityMode.None],
      securityPolicies: [opcua.SecurityPolicy.None],
      allowAnonymous: config.allowAnonymous,
      userManager: {
        isValidUser: (username: string, password: string) =>
          users.some((u) => u.username === username && u.password === password),
      },
      registerServerMethod: opcua.RegisterServerMethod.HIDDEN,
      buildInfo: { productName: 'citysense lamp-pole PLC simulator', manufacturerName: 'citysense' },
    });
    try {
      await server.initialize();
      const variables = this.#buildAddressSpace(opcua, server);
      await server.start();
      this.#port = server.endpoints[0]?.port ?? this.#port;
      const namespaceIndex = server.engine.addressSpace?.getOwnNamespace().index ?? 1;
      const timer = setInterval(() => this.#tick(), config.updateIntervalMs);
      this.#running = { server, variables, namespaceIndex, timer };
      this.#log.info({ endpointUrl: this.endpointUrl }, 'OPC UA simulator started');
    } catch (err) {
      await server.shutdown(0).catch(() => undefined);
      throw new CitysenseError(
        'CS_ERR_OPCUA_SIM_START',
        `OPC UA simulator could not start on port ${this.#port ?? config.port}: ${err instanceof Error ? err.message : String(err)}`,
        500,
      );
    }
  }

  #buildAddressSpace(opcua: NodeOpcua, server: OPCUAServer): Map<OpcUaSimPoint, UAVariable> {
    const addressSpace = server.engine.addressSpace;
    if (!addressSpace) throw new Error('the server has no address space after initialize');
    const ns = addressSpace.getOwnNamespace();
    const pole = ns.addObject({
      organizedBy: addressSpace.rootFolder.objects,
      browseName: 'Pole',
      nodeId: 's=Pole',
    });
    const parts = new Map<string, ReturnType<typeof ns.addObject>>();
    const variables = new Map<OpcUaSimPoint, UAVariable>();
    const units = {
      W: opcua.standardUnits.watt,
      '°C': opcua.standardUnits.degree_celsius,
      kWh: opcua.makeEUInformation('KWH', 'kWh', 'kilowatt hour'),
    };
    const time = new Date(this.#lastTime);
    for (const point of POINTS) {
      const spec = OPCUA_SIM_POINTS[point];
      const [, partName, name] = spec.path.split('/') as [string, string, string];
      let part = parts.get(partName);
      if (!part) {
        part = ns.addObject({ componentOf: pole, browseName: partName, nodeId: `s=Pole/${partName}` });
        parts.set(partName, part);
      }
      const variable =
        'unit' in spec
          ? ns.addAnalogDataItem({
              componentOf: part,
              browseName: name,
              nodeId: `s=${spec.path}`,
              dataType: spec.dataType,
              minimumSamplingInterval: 0,
              engineeringUnits: units[spec.unit],
              engineeringUnitsRange: { low: spec.range[0], high: spec.range[1] },
            })
          : ns.addVariable({
              componentOf: part,
              browseName: name,
              nodeId: `s=${spec.path}`,
              dataType: spec.dataType,
              minimumSamplingInterval: 0,
            });
      const status =
        this.#faults.get(point) === 'bad' ? opcua.StatusCodes.BadSensorFailure : opcua.StatusCodes.Good;
      variable.setValueFromSource(this.#variant(point), status, time);
      variables.set(point, variable);
    }
    return variables;
  }

  #variant(point: OpcUaSimPoint): Variant | { dataType: number; value: number | boolean } {
    const opcua = this.#opcua;
    const value = this.#values?.[point] ?? 0;
    const dataType =
      OPCUA_SIM_POINTS[point].dataType === 'Boolean' ? opcua?.DataType.Boolean : opcua?.DataType.Double;
    return { dataType: dataType ?? 0, value };
  }

  #tick(): void {
    const running = this.#running;
    const opcua = this.#opcua;
    if (!running || !opcua || !this.#plc) return;
    const time = this.#stamp();
    this.#values = this.#plc.step(time);
    for (const [point, variable] of running.variables) {
      if (this.#faults.has(point)) continue;
      variable.setValueFromSource(this.#variant(point), opcua.StatusCodes.Good, new Date(time));
    }
  }

  /** A source time after every earlier one, even if the clock stalls or steps back. */
  #stamp(): number {
    const offset = this.#config?.timeOffsetMs ?? 0;
    this.#lastTime = Math.max(Math.floor(this.#now() + offset), this.#lastTime + 1);
    return this.#lastTime;
  }
}
