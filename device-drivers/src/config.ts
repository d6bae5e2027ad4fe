import { CitysenseError } from '@citysense/protocol';
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** One problem in a driver's options, with a JSON pointer to the offending field. */
export interface DriverConfigProblem {
  path: string;
  message: string;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Every schema problem of `value`, choices spelled out for literal unions. */
export function driverConfigProblems(schema: TSchema, value: unknown): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  for (const e of Value.Errors(schema, value)) {
    const anyOf = (e.schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
    const choices = anyOf?.every((s) => typeof s.const === 'string')
      ? anyOf.map((s) => String(s.const))
      : null;
    problems.push({
      path: e.path || '/',
      message: choices ? `must be one of ${choices.join(', ')}` : e.message,
    });
  }
  return problems;
}

/**
 * Applies the schema's defaults to `input`, validates it and returns it frozen. All
 * problems come out at once in one CS_ERR_CONFIG_INVALID (details: DriverConfigProblem[]),
 * so a user fixes a driver's options in one go. `what` names the options in the message.
 */
export function resolveDriverConfig<T extends TSchema>(
  schema: T,
  input: unknown,
  what: string,
  extraProblems: (value: Static<T>) => DriverConfigProblem[] = () => [],
): Readonly<Static<T>> {
  const value: unknown = Value.Default(schema, structuredClone(input ?? {}));
  const problems = driverConfigProblems(schema, value);
  if (problems.length === 0) problems.push(...extraProblems(value as Static<T>));
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    throw new CitysenseError(
      'CS_ERR_CONFIG_INVALID',
      `${what} have ${problems.length} problem(s), fix them and start again: ${list}`,
      400,
      problems,
    );
  }
  return deepFreeze(value as Static<T>);
}
