import { readFile } from 'node:fs/promises';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { domainXmlDevices, type DomainXmlDevices, type XmlElement } from '../core/domain-xml.js';
import { HostdevError } from '../core/errors.js';

/*
 * `assign --domain-xml FILE` and `release --domain-xml FILE`: the file read and parsed by a maintained
 * XML library (fast-xml-parser, loaded only for this option); what its elements mean is core/domain-xml.ts.
 */

type Ordered = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** fast-xml-parser's ordered form ({tag: children, ':@': attributes}, {'#text': ...}) as XmlElements. */
function elements(nodes: readonly Ordered[]): XmlElement[] {
  return nodes.flatMap((node) => {
    const name = Object.keys(node).find((key) => key !== ':@' && key !== '#text');
    if (name === undefined) return [];
    const children = node[name] as Ordered[];
    const text = children.flatMap((c) => (c['#text'] === undefined ? [] : [String(c['#text'])])).join('');
    return [{ name, attributes: node[':@'] ?? {}, children: elements(children), text }];
  });
}

export async function readDomainXml(file: string): Promise<DomainXmlDevices> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new HostdevError('HOSTDEV_DOMAIN_XML', `cannot read the domain XML ${file}: ${code}`, { hint: 'Give the path of a domain XML file (virsh dumpxml DOMAIN > FILE).', details: { path: file, errno: code } });
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new HostdevError('HOSTDEV_DOMAIN_XML', `${file} is not well-formed XML: line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`, {
      hint: 'Fix the file (xmllint --noout FILE points at the same place).',
      details: { path: file, line: valid.err.line, column: valid.err.col },
    });
  }
  const roots = elements(parser.parse(text) as Ordered[]);
  if (roots.length !== 1) {
    throw new HostdevError('HOSTDEV_DOMAIN_XML', `${file} has ${roots.length} root elements`, { hint: 'A domain XML has one root, <domain>.', details: { path: file } });
  }
  return domainXmlDevices(roots[0]!);
}
