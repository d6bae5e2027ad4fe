/** Labels files: one class name per line, in output index order. */

/** Class names of a labels file: one per line, trimmed; CRLF and trailing blank lines tolerated. */
export function parseLabels(text: string): string[] {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}
