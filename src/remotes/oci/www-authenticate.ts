// The challenge of a registry's 401 (RFC 7235 with the Docker token spec's parameters):
// `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:pull"`
// or `Basic realm="Registry"`.

export interface Challenge {
  scheme: 'bearer' | 'basic' | 'other';
  /** Lower-cased parameter names; quoted values unquoted. */
  parameters: Record<string, string>;
}

/** The first challenge of a WWW-Authenticate header, or undefined when there is none. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const text = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!text) return undefined;
  const space = text.search(/\s/);
  const schemeWord = (space < 0 ? text : text.slice(0, space)).toLowerCase();
  const scheme = schemeWord === 'bearer' || schemeWord === 'basic' ? schemeWord : 'other';
  const parameters: Record<string, string> = {};
  const rest = space < 0 ? '' : text.slice(space + 1);
  // name=value or name="value with \" escapes", separated by commas.
  const parameter = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  for (let match = parameter.exec(rest); match; match = parameter.exec(rest)) {
    parameters[match[1]!.toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!;
    if (parameter.lastIndex >= rest.length) break;
  }
  return { scheme, parameters };
}
