import { CitysenseError } from '@citysense/protocol';

/** Stable error codes of the Modbus driver. */
export const MODBUS_ERRORS = {
  /** The server or gateway refuses the connection, or the connection is lost; the driver reconnects. */
  unreachable: 'CS_ERR_MODBUS_UNREACHABLE',
  /** A unit does not answer within its timeout; other units on the connection keep polling. */
  timeout: 'CS_ERR_MODBUS_TIMEOUT',
  /** A unit answers with a Modbus exception (illegal address, ...): the register map does not fit it. */
  exception: 'CS_ERR_MODBUS_EXCEPTION',
  /** Modbus RTU asked for, but no usable serial port on this node. */
  rtuUnavailable: 'CS_ERR_MODBUS_RTU_UNAVAILABLE',
  /** A write names an unknown device or metric, a read-only table, or a value that does not fit. */
  write: 'CS_ERR_MODBUS_WRITE',
} as const;

/** Names of Modbus exception codes (Modbus Application Protocol v1.1b3 §7). */
export const MODBUS_EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** A Modbus exception response; `exceptionCode` is the protocol's code (2 = illegal data address). */
export class ModbusExceptionError extends CitysenseError {
  /** The exception code the unit answered with. */
  readonly exceptionCode: number;

  constructor(exceptionCode: number, what: string) {
    const name = MODBUS_EXCEPTION_NAMES[exceptionCode] ?? 'unknown exception';
    super(
      MODBUS_ERRORS.exception,
      `${what} answered Modbus exception ${exceptionCode} (${name}): check the register map against the device's datasheet`,
      502,
      { exceptionCode },
    );
    this.name = 'ModbusExceptionError';
    this.exceptionCode = exceptionCode;
  }
}
