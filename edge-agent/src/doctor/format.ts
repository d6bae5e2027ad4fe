import type { DoctorReport } from './report.ts';

/** Renders the report as a fixed-width table, one line per check, then the overall verdict. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(5, ...report.checks.map((c) => c.name.length));
  const lines = report.checks.map(
    (c) => `${c.verdict.toUpperCase().padEnd(5)} ${c.name.padEnd(width)}  ${c.detail}`,
  );
  const failed = report.checks.filter((c) => c.verdict === 'fail').length;
  const warned = report.checks.filter((c) => c.verdict === 'warn').length;
  lines.push(
    '',
    `${report.nodeId ?? 'not enrolled'}: ${failed === 0 ? 'healthy' : `${failed} check(s) failed`}${warned ? `, ${warned} warning(s)` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
