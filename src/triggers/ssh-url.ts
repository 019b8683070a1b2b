/** The SSH server a clone URL names. */
export interface SshHost {
  host: string;
  port: number;
}

const sshSchemes = new Set(['ssh:', 'git+ssh:', 'ssh+git:']);
/** `[user@]host:path`, as git reads it: a colon before any slash, and no scheme. */
const scpLike = /^(?:[^@/]+@)?(\[[^\]/]+\]|[^:/[\]]+):(?!\/\/)/;

/** The host and port of an SSH clone URL (`ssh://[user@]host[:port]/path` or `user@host:path`), or null. */
export function sshHostOf(cloneUrl: string): SshHost | null {
  const target = cloneUrl.includes('://') ? fromUrl(cloneUrl) : fromScpLike(cloneUrl);
  // A host that looks like an option would be taken as one by ssh-keyscan.
  return target && target.host !== '' && !target.host.startsWith('-') ? target : null;
}

function fromUrl(cloneUrl: string): SshHost | null {
  let url: URL;
  try {
    url = new URL(cloneUrl);
  } catch {
    return null;
  }
  if (!sshSchemes.has(url.protocol)) return null;
  return { host: unbracketed(url.hostname), port: url.port === '' ? 22 : Number(url.port) };
}

function fromScpLike(cloneUrl: string): SshHost | null {
  const match = scpLike.exec(cloneUrl);
  return match ? { host: unbracketed(match[1]!), port: 22 } : null;
}

const unbracketed = (host: string) => host.replace(/^\[(.*)\]$/, '$1');
