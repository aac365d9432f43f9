// The remote forms the agent accepts, as an error's hint lists them (SPEC.md, "Remotes").
export const acceptedRemoteForms = [
  's3://bucket/path/app.zip',
  'http(s)://host/path/app.zip',
  'git@host:org/app.git[/sub/dir][#ref]',
  'git+ssh://, git+https://, ssh://, git:// URLs to a repository',
  'https://host/org/app.git[/sub/dir][#ref]',
  'file:///srv/git/app.git[#ref] or /srv/git/app.git',
  'file:///path/app.zip or /path/app.zip',
  'oci://host[:port]/repository:tag or oci://host[:port]/repository@sha256:digest',
];
