// The reconnect loop: keeps N tunnels up. Each slot runs serveTunnelOnce again and again with
// jittered, capped exponential backoff, reset after a healthy period; a relay-rejected outcome is
// permanent and stops the connector. The transport choice (tcp, https, auto with fallback) is made
// here per attempt; the attempt itself never retries.
import { DialError, FerryError, describeError } from '../shared/errors.js';
import { serveTunnelOnce, type SessionOptions, type SessionTarget } from './session.js';
import type { Transport } from './config.js';
import type { EgressDialer } from '../egress/dial/index.js';
import type { ConnectorState } from './state.js';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  healthyAfterMs: number;
}

/** "Full jitter" backoff: a random delay up to min(max, initial·2^attempt). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(policy.initialMs / 2 + random() * (ceiling - policy.initialMs / 2));
}

export interface SupervisorOptions extends Omit<SessionOptions, 'target' | 'signal' | 'onUp' | 'dialer'> {
  /** transport tcp: always direct; transport https: the resolved proxy route. */
  dialers: { tcp: EgressDialer; https: EgressDialer };
  state: ConnectorState;
  tunnels: number;
  transport: Transport;
  relayHost?: string;
  backoff: BackoffPolicy;
  /** How long `auto` stays on https before trying direct again. */
  directRetryMs?: number;
  onStatus?(event: { slot: number; up: boolean; target?: SessionTarget; error?: Error }): void;
}

export class Supervisor {
  private readonly abort = new AbortController();
  private readonly slots: Promise<void>[] = [];
  private fatal: Error | undefined;
  private httpsSince: number | undefined;
  private turn = 0;
  private state: ConnectorState;

  constructor(private readonly options: SupervisorOptions) {
    this.state = options.state;
  }

  /** A renewed certificate: tunnels opened from now on use it. */
  updateState(state: ConnectorState): void {
    this.state = state;
  }

  start(): void {
    for (let slot = 0; slot < this.options.tunnels; slot++) this.slots.push(this.runSlot(slot));
  }

  /** Resolves when every slot stopped: after stop(), or when the relay rejected the connector. */
  async done(): Promise<Error | undefined> {
    await Promise.all(this.slots);
    return this.fatal;
  }

  stop(): void {
    this.abort.abort();
  }

  private async runSlot(slot: number): Promise<void> {
    const { options } = this;
    const log = options.logger.child({ slot });
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      const target = this.nextTarget();
      const outcome = await serveTunnelOnce({
        ...options,
        dialer: options.dialers[target.transport],
        state: this.state,
        target,
        signal: this.abort.signal,
        onUp: () => {
          log.info({ relay: `${target.host}:${target.port}`, transport: target.transport }, 'tunnel up');
          options.onStatus?.({ slot, up: true, target });
        },
      });
      const replaced = !!outcome.draining;
      if (replaced) log.info('relay sent GOAWAY: opening a replacement tunnel');
      if (this.abort.signal.aborted) break;
      options.onStatus?.({ slot, up: false, target, error: outcome.error });
      if (outcome.error instanceof DialError && outcome.error.permanent) {
        this.fatal = outcome.error;
        log.error({ errorClass: outcome.error.errorClass, fix: outcome.error.fix }, outcome.error.message);
        this.abort.abort();
        break;
      }
      if (outcome.connected && outcome.durationMs >= options.backoff.healthyAfterMs) attempt = 0;
      if (!outcome.connected) this.noteFailure(target, outcome.error);
      const delay = replaced ? 0 : backoffDelay(attempt++, options.backoff);
      if (outcome.error) {
        log.warn({ err: summarize(outcome.error), transport: target.transport, relay: `${target.host}:${target.port}`, retryInMs: delay }, outcome.connected ? 'tunnel closed' : 'tunnel attempt failed');
      }
      await sleep(delay, this.abort.signal);
    }
  }

  /** Picks the relay address and transport for the next attempt (rotating across addresses). */
  private nextTarget(): SessionTarget {
    const { relayHost } = this.options;
    const { state } = this;
    const useHttps = this.options.transport === 'https' || (this.options.transport === 'auto' && this.httpsSince !== undefined
      && Date.now() - this.httpsSince < (this.options.directRetryMs ?? 300_000));
    const list = useHttps ? state.publicAddresses : state.tunnelAddresses;
    const address = list[this.turn++ % list.length]!;
    const at = address.lastIndexOf(':');
    const advertised = address.slice(0, at).replace(/^\[|\]$/g, '');
    const host = relayHost ?? advertised;
    return { host, port: Number(address.slice(at + 1)), servername: host, transport: useHttps ? 'https' : 'tcp' };
  }

  /** In `auto`, a direct attempt that cannot connect switches to https through the proxy. */
  private noteFailure(target: SessionTarget, error: Error | undefined): void {
    if (this.options.transport !== 'auto') return;
    if (target.transport === 'https') {
      // https failed as well (e.g. the relay is restarting): the next attempt tries direct again.
      this.httpsSince = undefined;
      return;
    }
    if (error instanceof DialError && ['connect-timeout', 'connect-refused', 'dns'].includes(error.errorClass)) {
      if (this.httpsSince === undefined) {
        this.options.logger.warn({ reason: error.errorClass, detail: error.message },
          'direct connection to the relay failed; falling back to https through the proxy (transport auto)');
      }
      this.httpsSince = Date.now();
    }
  }
}

function summarize(error: Error): Record<string, unknown> {
  return error instanceof FerryError
    ? { code: error.code, message: describeError(error), errorClass: (error as DialError).errorClass }
    : { message: error.message };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
