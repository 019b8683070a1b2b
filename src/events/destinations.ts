import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { SlipwayError } from '../errors.ts';

/**
 * Where deliveries may go. Unless `events.allowPrivateDestinations` is on, Slipway refuses every
 * address that is not global unicast: loopback, RFC 1918, link-local, CGNAT, unique-local, multicast,
 * unspecified, reserved, and IPv4 addresses embedded in IPv6 that are any of those. Literal addresses
 * and `localhost` are refused when a subscription is saved; names are checked again on every
 * connection, against what they resolve to then, so DNS rebinding cannot sneak a request through.
 */

export class DestinationRefusedError extends SlipwayError {
  constructor(message: string) {
    super('SLW_ERR_DESTINATION_REFUSED', message);
  }
}

const rangeNames: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private (RFC 1918) address',
  linkLocal: 'a link-local address',
  carrierGradeNat: 'a carrier-grade NAT (RFC 6598) address',
  uniqueLocal: 'a unique-local (fc00::/7) address',
  multicast: 'a multicast address',
  unspecified: 'the unspecified address',
  broadcast: 'the broadcast address',
  reserved: 'a reserved address',
};

/** IPv6 ranges whose last 32 bits are an IPv4 address that decides where packets really go. */
const embedsIpv4 = new Set(['ipv4Mapped', 'rfc6052', 'rfc6145']);

const privateHint = 'private destinations are refused unless events.allowPrivateDestinations is on';

/** Why an IP address may not be sent to ("a loopback address"), or null for a global unicast one. */
export function addressProblem(address: string): string | null {
  let parsed = ipaddr.parse(address);
  let range = parsed.range();
  if (parsed.kind() === 'ipv6' && embedsIpv4.has(range)) {
    parsed = ipaddr.fromByteArray(parsed.toByteArray().slice(12));
    range = parsed.range();
  }
  if (range === 'unicast') return null;
  return rangeNames[range] ?? `a ${range} address`;
}

/** The URL's host as an IP address, or null when it is a name. */
function literalAddress(url: URL): string | null {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(host) ? host : null;
}

function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/** Why a literal-address URL may not be sent to; names are left to the connect-time check. */
export function literalAddressProblem(url: URL, allowPrivate: boolean): string | null {
  const address = literalAddress(url);
  if (allowPrivate || address === null) return null;
  const problem = addressProblem(address);
  return problem && `${url.hostname} is ${problem}: ${privateHint}`;
}

/** Why a subscription may not send to this URL: a literal private address or `localhost`; else null. */
export function destinationProblem(url: URL, allowPrivate: boolean): string | null {
  if (allowPrivate) return null;
  if (isLocalhostName(url.hostname)) return `${url.hostname} is a loopback address: ${privateHint}`;
  return literalAddressProblem(url, allowPrivate);
}

/** A `dns.lookup` for sockets that fails, naming the address, when a name resolves to a refused one. */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...(options as LookupOptions), all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    for (const { address } of addresses) {
      const problem = addressProblem(address);
      if (problem) {
        return callback(
          new DestinationRefusedError(`${hostname} resolves to ${address}, ${problem}: ${privateHint}`),
          '',
          0,
        );
      }
    }
    if ((options as LookupOptions).all) return callback(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
};
