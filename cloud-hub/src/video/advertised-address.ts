/** The IPv4 address the hub tells cameras to reach it on (SIP Via/Contact, SDP `c=`). */
import { networkInterfaces } from 'node:os';

/**
 * `configured` when set; else the bind address when it is a specific one; else the first
 * non-loopback IPv4 address of this machine (what a camera on the LAN reaches); else loopback.
 */
export function advertisedAddress(bindHost: string, configured?: string): string {
  if (configured) return configured;
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  for (const addresses of Object.values(networkInterfaces()))
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}
