/** A unified code shown in its GB/T 28181 Annex D parts (centre, industry, type, network, serial). */
import { m } from './messages.ts';

/** The GB/T 28181 Annex D parts of a 20-digit code. */
export function CodeParts({ code }: { code: string }) {
  const parts: Array<[string, string]> = [
    [code.slice(0, 8), m('code.centre')],
    [code.slice(8, 10), m('code.industry')],
    [code.slice(10, 13), m('code.type')],
    [code.slice(13, 14), m('code.network')],
    [code.slice(14), m('code.serial')],
  ];
  return (
    <span class="code-parts" data-testid="unified-code" data-code={code} title={code}>
      <span class="sr-only">{code}</span>
      {parts.map(([digits, label]) => (
        <span key={label} aria-hidden="true">
          {digits}
          <small>{label}</small>
        </span>
      ))}
    </span>
  );
}
