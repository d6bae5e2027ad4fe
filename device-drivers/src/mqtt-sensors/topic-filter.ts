/**
 * MQTT topic filters as the mapping uses them: validation and matching by the rules of
 * MQTT 3.1.1 §4.7 (the same in MQTT 5.0 §4.7), so a mapping fails at start rather than
 * being silently refused by the broker.
 */

/** Problems with `filter` as an MQTT topic filter; empty when it is valid. */
export function topicFilterProblems(filter: string): string[] {
  const problems: string[] = [];
  if (filter.length === 0) return ['a topic filter must not be empty (MQTT 3.1.1 §4.7.3)'];
  if (filter.includes('\u0000')) problems.push('a topic filter must not contain U+0000 (MQTT 3.1.1 §4.7.3)');
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      problems.push(`"#" must be a whole level and the last one (MQTT 3.1.1 §4.7.1.2), not "${level}"`);
    }
    if (level.includes('+') && level !== '+') {
      problems.push(`"+" must occupy a whole level (MQTT 3.1.1 §4.7.1.3), not "${level}"`);
    }
  });
  return problems;
}

/** True when `topic` (a concrete topic name) matches the valid filter `filter`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  // Wildcards at the first level do not match topics starting with "$" (MQTT 3.1.1 §4.7.2).
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Number of levels of `filter`, and whether it ends in "#" (matches any deeper level too). */
export function topicFilterDepth(filter: string): { levels: number; open: boolean } {
  const levels = filter.split('/');
  return { levels: levels.length, open: levels[levels.length - 1] === '#' };
}
