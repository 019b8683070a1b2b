import { invalid } from '../errors.ts';

/** The most text a trigger's known hosts may hold: a few hundred keys. */
export const maxKnownHostsLength = 64 * 1024;

/** One key line of an OpenSSH known_hosts file. */
export interface KnownHostKey {
  /** The line's number, from 1. */
  line: number;
  marker: '@cert-authority' | '@revoked' | null;
  /** The host patterns as written (host, [host]:port, comma-separated), or a hashed |1|salt|hash. */
  hosts: string;
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, … */
  keyType: string;
}

const hashedHost = /^\|1\|[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]+={0,2}$/;
const hostPattern = /^!?(?:\[[^\][\s,]+\]:\d{1,5}|[^\][\s,|]+)$/;
const keyTypePattern = /^[a-z0-9][a-z0-9@.-]*$/;
const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The key lines of OpenSSH known_hosts text (`host[,host] keytype base64key [comment]`, an optional
 * @cert-authority or @revoked first, hashed hosts allowed; blank lines and # comments skipped). Throws a
 * 400 naming the first line that is not one, or when there is no key at all.
 */
export function parseKnownHosts(text: string): KnownHostKey[] {
  const keys: KnownHostKey[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const problem = (why: string) => invalid(`known hosts line ${index + 1} ("${ellipsis(line)}") ${why}`);
    const fields = line.split(/\s+/);
    const marker = fields[0] === '@cert-authority' || fields[0] === '@revoked' ? fields.shift()! : null;
    const [hosts, keyType, key] = fields;
    if (hosts === undefined || keyType === undefined || key === undefined) {
      throw problem('is not "host[,host] keytype base64key", as ssh-keyscan prints');
    }
    if (!hashedHost.test(hosts) && !hosts.split(',').every((host) => hostPattern.test(host))) {
      throw problem(`has no valid host: "${ellipsis(hosts)}" (host, [host]:port or a hashed |1|… entry)`);
    }
    if (!keyTypePattern.test(keyType)) throw problem(`has no valid key type: "${ellipsis(keyType)}"`);
    if (!base64.test(key) || keyTypeOf(key) !== keyType) {
      throw problem(`has no valid ${keyType} key: the key is not the base64 of a ${keyType} public key`);
    }
    keys.push({ line: index + 1, marker: marker as KnownHostKey['marker'], hosts, keyType });
  });
  if (keys.length === 0) throw invalid('known hosts hold no key: give lines as ssh-keyscan prints them');
  return keys;
}

/** The key type an SSH public key blob names first (a length-prefixed string), or null. */
function keyTypeOf(key: string): string | null {
  const blob = Buffer.from(key, 'base64');
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return null;
  return blob.subarray(4, 4 + length).toString('latin1');
}

function ellipsis(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
