import { lookup } from "node:dns/promises";
import { BatonError } from "../core/errors.ts";

/** Which listener failed and which settings choose its address, for the message. */
export interface Listener {
  what: string;
  host: string;
  port: number;
  settings: string;
}

const REASONS: Record<string, (l: Listener) => string> = {
  EADDRINUSE: (l) => `port ${l.port} is already in use`,
  EADDRNOTAVAIL: (l) => `${l.host} is not an address of this machine`,
  EACCES: (l) => `binding port ${l.port} is not permitted (ports below 1024 need privileges)`,
  ENOTFOUND: (l) => `the host name ${l.host} does not resolve`,
  EAI_AGAIN: (l) => `the host name ${l.host} could not be resolved (DNS unavailable)`,
};

/**
 * A listen() failure as a one-line BatonError naming the listener's settings, or undefined for an
 * error that is not about the address. Its own code: a host that does not resolve here is the
 * listen address, not the database (ENOTFOUND alone reads as "cannot reach MySQL").
 */
export function listenError(err: unknown, l: Listener): BatonError | undefined {
  const code = (err as { code?: unknown })?.code;
  const reason = typeof code === "string" ? REASONS[code] : undefined;
  if (!reason) return undefined;
  return new BatonError("BATON_LISTEN_FAILED", `cannot listen for the ${l.what} on ${l.host}:${l.port}: ${reason(l)} (${code}); set ${l.settings}`);
}

/**
 * Resolves the listen host before any startup work (migrations, the first DAG scan), so a host
 * name that does not resolve fails at once. An address that resolves but is not this machine's
 * is only known at listen().
 */
export async function checkListenHost(l: Listener): Promise<void> {
  try {
    await lookup(l.host);
  } catch (err) {
    throw listenError(err, l) ?? err;
  }
}
