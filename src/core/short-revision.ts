// A revision as log lines and operators show it: its first 12 hex characters.
export const shortRevision = (revision: string) => revision.replace(/^sha256:/, '').slice(0, 12) || 'unknown';
