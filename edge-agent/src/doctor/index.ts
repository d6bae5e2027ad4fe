/** `citysense agent doctor`: a self-diagnosis report of one gateway. */
export { type CameraTarget, cameraTargets } from './cameras.ts';
export { formatReport } from './format.ts';
export type { CheckContext, CheckFamily, CheckResult, CheckVerdict, DoctorReport } from './report.ts';
export { builtinChecks, type DoctorOptions, runDoctor } from './runner.ts';
