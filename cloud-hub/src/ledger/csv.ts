/**
 * A streaming RFC 4180 CSV reader: quoted fields with doubled quotes, CRLF or LF line
 * ends, a leading UTF-8 BOM dropped. Records come out as they complete, so a large
 * import is applied while it is still arriving.
 */

/** One record with the line it starts on (1-based; the header is line 1). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Reads records from text chunks (a request body, a file stream). */
export async function* readCsv(chunks: AsyncIterable<string | Buffer>): AsyncGenerator<CsvRecord> {
  const decoder = new TextDecoder('utf-8');
  let field = '';
  let fields: string[] = [];
  let quoted = false;
  let afterQuote = false;
  let line = 1;
  let recordLine = 1;
  let first = true;
  let pendingCr = false;
  const out: CsvRecord[] = [];
  const endRecord = () => {
    fields.push(field);
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: recordLine, fields });
    fields = [];
    field = '';
    afterQuote = false;
  };
  const feed = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      let ch = text[i] as string;
      if (first) {
        first = false;
        if (ch === '\uFEFF') continue;
      }
      if (pendingCr) {
        pendingCr = false;
        if (ch === '\n') continue;
      }
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i++;
          } else if (i + 1 === text.length) {
            // Cannot see past the chunk: decide on the next one.
            quoted = false;
            afterQuote = true;
            continue;
          } else {
            quoted = false;
            afterQuote = true;
          }
        } else {
          if (ch === '\n') line++;
          field += ch;
        }
        continue;
      }
      if (afterQuote && ch === '"') {
        // `""` split across chunks: the quote belongs to the field, still quoted.
        field += '"';
        quoted = true;
        afterQuote = false;
        continue;
      }
      if (ch === '\r') {
        pendingCr = true;
        ch = '\n';
      }
      if (ch === ',') {
        fields.push(field);
        field = '';
        afterQuote = false;
      } else if (ch === '\n') {
        endRecord();
        line++;
        recordLine = line;
      } else if (ch === '"' && field === '' && !afterQuote) {
        quoted = true;
      } else {
        field += ch;
      }
    }
  };
  for await (const chunk of chunks) {
    feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    yield* out.splice(0);
  }
  feed(decoder.decode());
  if (field !== '' || fields.length > 0) endRecord();
  yield* out.splice(0);
}
