/**
 * Safe XML parsing for MANSCDP: no DOCTYPE (so no entity expansion beyond the standard five),
 * values kept as strings, and element names looked up case-insensitively because vendors vary
 * (`DeviceID`, `DeviceId`, `deviceID`).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { manscdpInvalid } from './manscdp-error.ts';

/** A parsed element: text, or children and `@_`-prefixed attributes by their original names. */
export type XmlNode = string | { [name: string]: XmlNode | XmlNode[] };

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});

/** Parses a document with exactly one root element; malformed XML and DOCTYPE are refused. */
export function parseXmlTree(text: string): { root: string; node: XmlNode } {
  // A DOCTYPE is never part of MANSCDP; refusing it closes off entity-expansion attacks.
  if (/<!DOCTYPE|<!ENTITY/i.test(text))
    throw manscdpInvalid('DOCTYPE and entity declarations are not allowed');
  const valid = XMLValidator.validate(text);
  if (valid !== true)
    throw manscdpInvalid(`malformed XML at line ${valid.err.line}: ${valid.err.msg}`, { xml: valid.err });
  const doc: unknown = parser.parse(text);
  const roots = typeof doc === 'object' && doc !== null ? Object.keys(doc) : [];
  const root = roots[0];
  if (roots.length !== 1 || root === undefined)
    throw manscdpInvalid('the document must have exactly one root element');
  return { root, node: (doc as Record<string, XmlNode>)[root] as XmlNode };
}

function lookup(node: XmlNode | undefined, key: string): XmlNode | XmlNode[] | undefined {
  if (node === undefined || typeof node === 'string') return undefined;
  const wanted = key.toLowerCase();
  for (const [name, value] of Object.entries(node)) if (name.toLowerCase() === wanted) return value;
  return undefined;
}

/** The text of a child element or `#text`, undefined when absent, empty, repeated, or not a leaf. */
export function childText(node: XmlNode | undefined, name: string): string | undefined {
  const value = lookup(node, name);
  const text = typeof value === 'object' && !Array.isArray(value) ? lookup(value, '#text') : value;
  return typeof text === 'string' && text !== '' ? text : undefined;
}

/** An attribute's value, matched case-insensitively. */
export function attribute(node: XmlNode | undefined, name: string): string | undefined {
  const value = lookup(node, `@_${name}`);
  return typeof value === 'string' ? value : undefined;
}

/** A single child element (the first when repeated). */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  const value = lookup(node, name);
  return Array.isArray(value) ? value[0] : value;
}

/** Every child element of that name, always as an array (one `<Item>` is still a list). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = lookup(node, name);
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
