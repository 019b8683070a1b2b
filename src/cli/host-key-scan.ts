import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { sshHostOf } from '../triggers/ssh-url.ts';
import { CliError, usageError } from './errors.ts';

/**
 * The host keys the clone URL's SSH server presents, in known_hosts format, as `ssh-keyscan -p PORT HOST`
 * prints them from this machine. Throws when the URL is not an SSH one, ssh-keyscan is missing or no key
 * answered.
 */
export async function scanHostKeys(cloneUrl: string): Promise<string> {
  const target = sshHostOf(cloneUrl);
  if (!target) {
    throw usageError(
      `cannot scan host keys of ${cloneUrl}: it is not an SSH clone URL (ssh://[user@]host[:port]/path or user@host:path)`,
    );
  }
  const { host, port } = target;
  const scanned = await execa('ssh-keyscan', ['-T', '5', '-p', String(port), host], {
    reject: false,
    stdin: 'ignore',
  });
  if (scanned.code === 'ENOENT') {
    throw new CliError(
      'SLW_ERR_TOOL',
      'scanning host keys needs ssh-keyscan (OpenSSH) on PATH: install it (Debian: apt-get install openssh-client)',
      1,
    );
  }
  const keys = scanned.stdout.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
  if (keys.length === 0) {
    const why = scanned.stderr.split('\n').findLast((line) => line.trim() !== '' && !line.startsWith('#'));
    throw new CliError(
      'SLW_ERR_HOST_KEYS',
      `no host key answered from ${host} port ${port} within 5 s: is it an SSH server reachable from this machine?${why ? ` (ssh-keyscan: ${why.trim()})` : ''}`,
      1,
    );
  }
  return `${keys.join('\n')}\n`;
}

/** Each key line of known_hosts text as `ssh-keygen -lf` shows it: `256 SHA256:… host (ED25519)`. */
export function fingerprintLines(knownHosts: string): string[] {
  return knownHosts
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([hosts, keyType, key]) => hosts && !hosts.startsWith('#') && keyType && key)
    .map(([hosts, keyType, key]) => {
      const blob = Buffer.from(key!, 'base64');
      const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
      const bits = keyBits(keyType!, blob);
      return `${bits === undefined ? '' : `${bits} `}${fingerprint} ${hosts} (${keyLabel(keyType!)})`;
    });
}

/** The names ssh-keygen gives key types. */
function keyLabel(keyType: string): string {
  const base = keyType.replace(/^sk-/, '').replace(/@openssh\.com$/, '');
  const label = base.startsWith('ecdsa-')
    ? 'ECDSA'
    : ({ 'ssh-ed25519': 'ED25519', 'ssh-rsa': 'RSA', 'ssh-dss': 'DSA' }[base] ?? keyType);
  return keyType.startsWith('sk-') ? `${label}-SK` : label;
}

/** The key's size in bits, as ssh-keygen prints it first; undefined for types it is not read from here. */
function keyBits(keyType: string, blob: Buffer): number | undefined {
  if (keyType.endsWith('ed25519') || keyType.startsWith('sk-ssh-ed25519')) return 256;
  const curve = /nistp(\d+)/.exec(keyType);
  if (curve) return Number(curve[1]);
  if (keyType !== 'ssh-rsa') return undefined;
  // The blob is the strings "ssh-rsa", e and n; the size is n's, without its sign byte.
  const eLength = blob.readUInt32BE(4 + keyType.length);
  const nAt = 4 + keyType.length + 4 + eLength;
  if (blob.length < nAt + 4) return undefined;
  const modulus = blob.subarray(nAt + 4, nAt + 4 + blob.readUInt32BE(nAt));
  const first = modulus.findIndex((byte) => byte !== 0);
  if (first < 0) return undefined;
  return (modulus.length - first - 1) * 8 + (32 - Math.clz32(modulus[first]!));
}
