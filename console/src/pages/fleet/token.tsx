/**
 * Enrolment and replacement tokens: the one-time token, the exact agent command for
 * the box, and the command as a QR code (drawn as SVG from the `qrcode` matrix, so it
 * stays sharp when printed and needs no canvas).
 */
import { useEffect, useState } from 'preact/hooks';
import { formatTime } from '../../i18n.ts';
import { m } from './messages.ts';

/** A created token (`POST /v1/enrollment-tokens` or `…/replacement-tokens`). */
export interface CreatedToken {
  id: string;
  token: string;
  name: string | null;
  replacesNode: string | null;
  expiresAt: string;
}

/** The hub's URL as the box must reach it: the console is served by the hub at its root. */
export function hubUrl(): string {
  return new URL('.', location.href).href.replace(/\/$/, '');
}

/** The command to run on the box (README "Box replacement" step 2; same for enrolment). */
export function agentCommand(token: string): string {
  return `npx citysense agent --hub ${hubUrl()} --token ${token}`;
}

/** The QR code of `text` as an SVG path of dark modules (the encoder loads on first use). */
export function QrCode({ text, label }: { text: string; label: string }) {
  const [qr, setQr] = useState<{ size: number; d: string } | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    import('qrcode').then(
      ({ default: QRCode }) => {
        const code = QRCode.create(text, { errorCorrectionLevel: 'M' });
        const n = code.modules.size;
        let d = '';
        for (let r = 0; r < n; r++)
          for (let c = 0; c < n; c++) if (code.modules.get(r, c)) d += `M${c + 4},${r + 4}h1v1h-1z`;
        if (live) setQr({ size: n + 8, d });
      },
      (e: unknown) => live && setFailed(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      live = false;
    };
  }, [text]);
  if (failed) return <p class="muted">{failed}</p>;
  if (!qr) return <span class="qr qr-loading spinner" aria-hidden="true" />;
  return (
    <svg
      class="qr"
      viewBox={`0 0 ${qr.size} ${qr.size}`}
      role="img"
      aria-label={label}
      data-testid="token-qr"
      shape-rendering="crispEdges"
    >
      <rect width={qr.size} height={qr.size} fill="#fff" />
      <path d={qr.d} fill="#000" />
    </svg>
  );
}

/** The token, its expiry, the agent command with a copy button, and the QR code. */
export function TokenCard({ created }: { created: CreatedToken }) {
  const [copied, setCopied] = useState(false);
  const command = agentCommand(created.token);
  return (
    <div class="token-card" data-testid="token-card">
      <div class="token-text">
        <h3>{m('token.title')}</h3>
        <code class="token-value" data-testid="token-value">
          {created.token}
        </code>
        <p class="muted">{m('token.expires', { at: formatTime(created.expiresAt) })}</p>
        <p>{m('token.command')}</p>
        <pre class="token-command" data-testid="token-command">
          {command}
        </pre>
        <button
          type="button"
          class="btn"
          onClick={() => {
            void navigator.clipboard?.writeText(command).then(
              () => setCopied(true),
              () => setCopied(false),
            );
          }}
        >
          {copied ? m('token.copied') : m('token.copy')}
        </button>
      </div>
      <QrCode text={command} label={m('token.qr')} />
    </div>
  );
}
