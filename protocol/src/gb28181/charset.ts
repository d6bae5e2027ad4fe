/**
 * Charset of a MANSCDP body, taken from its XML declaration (GB/T 28181-2016 §A.2: GB2312;
 * 2022 devices may send GB18030 or UTF-8). Bytes are decoded by the declared charset, never
 * assumed to be UTF-8.
 */
import iconv from 'iconv-lite';
import { CitysenseError } from '../errors.ts';
import { manscdpInvalid } from './manscdp-error.ts';

/** Charsets a MANSCDP body may declare. */
export type ManscdpCharset = 'GB2312' | 'GBK' | 'GB18030' | 'UTF-8';

/** Charset assumed when the declaration names none: what devices in the field send. */
export const DEFAULT_MANSCDP_CHARSET: ManscdpCharset = 'GB2312';

const CHARSETS: Readonly<Record<string, ManscdpCharset>> = {
  gb2312: 'GB2312',
  gbk: 'GBK',
  cp936: 'GBK',
  gb18030: 'GB18030',
  'utf-8': 'UTF-8',
  utf8: 'UTF-8',
};

// The declaration is ASCII in every supported charset, so reading the head as latin1 is safe.
const DECLARATION = /^(?:\uFEFF|\u00EF\u00BB\u00BF)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([^"']*)\1/i;

/** The charset an XML declaration names (case-insensitive), the default when it names none. */
export function declaredCharset(body: Uint8Array): ManscdpCharset {
  const head = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 256)).toString('latin1');
  const label = DECLARATION.exec(head)?.[2];
  if (label === undefined) return DEFAULT_MANSCDP_CHARSET;
  const charset = CHARSETS[label.trim().toLowerCase()];
  if (!charset)
    throw manscdpInvalid(
      `declared encoding "${label.slice(0, 40)}" is not one of GB2312, GBK, GB18030, UTF-8`,
    );
  return charset;
}

/** Decodes a body by its declared charset; bytes invalid in that charset are refused, not guessed. */
export function decodeBody(body: Uint8Array): { charset: ManscdpCharset; text: string } {
  const charset = declaredCharset(body);
  const text = iconv.decode(Buffer.from(body.buffer, body.byteOffset, body.byteLength), charset);
  // iconv-lite turns undecodable sequences into U+FFFD; a body that lies about its charset
  // would otherwise reach the catalog with garbled names.
  if (text.includes('\uFFFD'))
    throw manscdpInvalid(
      `bytes are not valid ${charset}; the device's XML declaration names the wrong encoding`,
    );
  return { charset, text };
}

/** Encodes text in `charset`; characters the charset cannot hold are refused rather than sent as '?'. */
export function encodeText(text: string, charset: ManscdpCharset): Uint8Array {
  const bytes = iconv.encode(text, charset);
  if (charset !== 'UTF-8' && iconv.decode(bytes, charset) !== text)
    throw new CitysenseError(
      'CS_ERR_MANSCDP_UNENCODABLE',
      `MANSCDP message has characters ${charset} cannot encode; send it with encoding 'GB18030' or 'UTF-8'`,
      500,
    );
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
