// One QuickJS instance with a PAC script loaded, driven synchronously, one attempt at a time. It runs
// inside the engine's worker thread (sandbox-worker.ts); engine.ts owns DNS, restarts and the
// watchdog. Everything in and out of an attempt is plain data, so it crosses the thread boundary.
//
// Limits enforced here: the per-call deadline (QuickJS interrupt handler), the stack
// (setMaxStackSize), and memory. runtime.setMemoryLimit alone does NOT bound a runtime's total in
// the prebuilt wasm (QuickJS's accounting needs malloc_usable_size, which its Emscripten build lacks,
// so the limit only bounds single allocations: justjake/quickjs-emscripten#255 and #271). Each
// sandbox therefore owns its WebAssembly.Memory with a fixed maximum (a baseline for QuickJS itself
// plus limits.memoryBytes); when the script's heap reaches it, malloc fails and QuickJS raises a
// clean "out of memory" that we classify as resource-limit.
import {
  newQuickJSWASMModule,
  newVariant,
  RELEASE_SYNC,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
} from 'quickjs-emscripten';
import { callBuiltin, sandboxPrelude, type BuiltinScope, type BuiltinValue } from './builtins.js';
import { clockFields } from './time.js';
import type { PacErrorClass } from './types.js';

/** QuickJS stack limit. Well under the thread's own stack, so deep recursion fails inside QuickJS. */
const MAX_STACK_BYTES = 256 * 1024;
const MAX_MESSAGE_CHARS = 500;
/** Distinct names one evaluation may resolve; beyond that, names answer "not resolvable". */
export const MAX_NAMES_PER_EVALUATION = 32;
const DISPATCHER_GLOBAL = '__ferryPacHost';
/** alert() output kept per attempt, and the length of each message: a chatty script cannot flood the log. */
const MAX_ALERTS = 100;
const MAX_ALERT_CHARS = 1000;
/** Longest DNS name (RFC 1035); anything longer or with spaces is "not resolvable" without asking DNS. */
const MAX_DNS_NAME_CHARS = 253;
const WASM_PAGE_BYTES = 64 * 1024;
/** Linear memory QuickJS needs before any script runs (static data, stack, runtime): 16 MiB. */
const BASELINE_WASM_PAGES = 256;
// The WebAssembly global is in Node but not in the ES2023 lib this project compiles against.
const WASM = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => object } }).WebAssembly;

export interface SandboxLimits {
  callTimeoutMs: number;
  loadTimeoutMs: number;
  memoryBytes: number;
}

/** What the script may see during one attempt. */
export interface AttemptInput {
  /** DNS answers known so far in this evaluation (lower-case names). */
  answers: [string, string[]][];
  myAddresses: string[];
  nowMs: number;
  timeZone?: string;
  /** On the final attempt a DNS miss answers "not resolvable" instead of asking for a restart. */
  finalAttempt: boolean;
}

export type AttemptOutcome = { ok: true; value: string } | { ok: false; pacClass: PacErrorClass; message: string };

export interface AttemptOutput {
  outcome: AttemptOutcome;
  /** Names the script asked for that were not in `answers`: resolve them and run the attempt again. */
  pending: string[];
  alerts: string[];
  /** True when the runtime may be inconsistent (interrupted, out of memory): load again before the next call. */
  poisoned: boolean;
}

class AttemptScope implements BuiltinScope {
  readonly answers: Map<string, readonly string[]>;
  readonly pending = new Set<string>();
  readonly alerts: string[] = [];

  constructor(private readonly input: AttemptInput) {
    this.answers = new Map(input.answers);
  }

  lookup(host: string): readonly string[] | undefined {
    const key = host.toLowerCase();
    if (key.length === 0 || key.length > MAX_DNS_NAME_CHARS || /\s/.test(key)) return [];
    const known = this.answers.get(key);
    if (known) return known;
    if (this.input.finalAttempt || this.answers.size + this.pending.size >= MAX_NAMES_PER_EVALUATION) return [];
    this.pending.add(key);
    return undefined;
  }

  myAddresses(): readonly string[] {
    return this.input.myAddresses;
  }

  clock = (gmt: boolean) => clockFields(new Date(this.input.nowMs), gmt ? 'GMT' : this.input.timeZone);

  nowMs(): number {
    return this.input.nowMs;
  }

  alert(message: string): void {
    if (this.alerts.length < MAX_ALERTS) this.alerts.push(message.length > MAX_ALERT_CHARS ? `${message.slice(0, MAX_ALERT_CHARS)}…` : message);
  }
}

class PacFailure extends Error {
  constructor(
    readonly pacClass: PacErrorClass,
    message: string,
  ) {
    super(message);
  }
}

export class QuickJsSandbox {
  private module: QuickJSWASMModule | undefined;
  private runtime: QuickJSRuntime | undefined;
  private context: QuickJSContext | undefined;
  private scope: AttemptScope | undefined;
  private deadline = 0;
  private interrupted = false;

  constructor(
    private readonly script: string,
    private readonly limits: SandboxLimits,
  ) {}

  /** Instantiates QuickJS ahead of the first load, so load time limits measure the script only. */
  async prepare(): Promise<void> {
    await this.ensureModule();
  }

  /** A QuickJS instance whose linear memory cannot grow past the baseline plus the memory limit. */
  private async ensureModule(): Promise<QuickJSWASMModule> {
    if (!this.module) {
      const wasmMemory = new WASM.Memory({
        initial: BASELINE_WASM_PAGES,
        maximum: BASELINE_WASM_PAGES + Math.ceil(this.limits.memoryBytes / WASM_PAGE_BYTES),
      });
      this.module = await newQuickJSWASMModule(
        newVariant(RELEASE_SYNC, { wasmMemory: wasmMemory as Parameters<typeof newVariant>[1]['wasmMemory'] }),
      );
    }
    return this.module;
  }

  get loaded(): boolean {
    return this.context !== undefined;
  }

  /** Loads the script in a fresh runtime (dropping any previous one). */
  async load(input: AttemptInput): Promise<AttemptOutput> {
    this.release();
    const module = await this.ensureModule();
    const scope = new AttemptScope(input);
    try {
      const runtime = module.newRuntime();
      this.runtime = runtime;
      runtime.setMemoryLimit(this.limits.memoryBytes);
      runtime.setMaxStackSize(MAX_STACK_BYTES);
      runtime.setInterruptHandler(() => this.shouldInterrupt());
      const context = runtime.newContext();
      this.context = context;
      this.installDispatcher(context);
      this.begin(scope, this.limits.loadTimeoutMs);
      this.evalOrThrow(context, sandboxPrelude(DISPATCHER_GLOBAL), 'pac-prelude.js');
      this.evalOrThrow(context, this.script, 'proxy.pac');
      if (!this.entrypoint(context)) {
        throw new PacFailure('no-entrypoint', 'the PAC script defines neither FindProxyForURL nor FindProxyForURLEx');
      }
      if (scope.pending.size > 0) this.release(); // ran with a DNS stand-in: must load again
      return { outcome: { ok: true, value: '' }, pending: [...scope.pending], alerts: scope.alerts, poisoned: false };
    } catch (error) {
      this.release();
      return { outcome: this.failure(error, 'load'), pending: [...scope.pending], alerts: scope.alerts, poisoned: true };
    } finally {
      this.scope = undefined;
    }
  }

  /** Runs FindProxyForURLEx (preferred) or FindProxyForURL once. */
  call(url: string, host: string, input: AttemptInput): AttemptOutput {
    const context = this.context;
    const scope = new AttemptScope(input);
    if (!context) throw new Error('PAC sandbox called before load');
    try {
      const name = this.entrypoint(context);
      if (!name) throw new PacFailure('no-entrypoint', 'the PAC script no longer defines FindProxyForURL');
      const fn = context.getProp(context.global, name);
      const urlHandle = context.newString(url);
      const hostHandle = context.newString(host);
      this.begin(scope, this.limits.callTimeoutMs);
      const result = context.callFunction(fn, context.undefined, urlHandle, hostHandle);
      fn.dispose();
      urlHandle.dispose();
      hostHandle.dispose();
      if (result.error) {
        const failure = this.classify(context, result.error, 'call', name);
        result.error.dispose();
        throw failure;
      }
      const type = context.typeof(result.value);
      const text = type === 'string' ? context.getString(result.value) : undefined;
      result.value.dispose();
      if (text === undefined) {
        throw new PacFailure('non-string-result', `${name} returned ${type === 'object' ? 'an object or null' : type}, not a string`);
      }
      return { outcome: { ok: true, value: text }, pending: [...scope.pending], alerts: scope.alerts, poisoned: false };
    } catch (error) {
      const outcome = this.failure(error, 'call');
      // A DNS interrupt is clean; a deadline interrupt or an out-of-memory may leave half-updated state.
      const poisoned = scope.pending.size === 0 && !outcome.ok && (outcome.pacClass === 'timeout' || outcome.pacClass === 'resource-limit');
      if (poisoned) this.release(outcome.ok ? false : outcome.pacClass === 'resource-limit');
      return { outcome, pending: [...scope.pending], alerts: scope.alerts, poisoned };
    } finally {
      this.scope = undefined;
    }
  }

  private evalOrThrow(context: QuickJSContext, code: string, filename: string): void {
    const result = context.evalCode(code, filename);
    if (result.error) {
      const failure = this.classify(context, result.error, 'load');
      result.error.dispose();
      throw failure;
    }
    result.value.dispose();
  }

  private installDispatcher(context: QuickJSContext): void {
    const dispatcher = context.newFunction(DISPATCHER_GLOBAL, (nameHandle, ...argHandles) => {
      const scope = this.scope;
      if (!scope) throw new Error('PAC builtin called outside an evaluation');
      const name = context.getString(nameHandle);
      const args = argHandles.map((h) => context.getString(h));
      return this.toHandle(context, callBuiltin(scope, name, args));
    });
    context.setProp(context.global, DISPATCHER_GLOBAL, dispatcher);
    dispatcher.dispose();
  }

  private toHandle(context: QuickJSContext, value: BuiltinValue): QuickJSHandle {
    if (value === null) return context.null;
    if (typeof value === 'boolean') return value ? context.true : context.false;
    if (typeof value === 'number') return context.newNumber(value);
    return context.newString(value);
  }

  /** The function to call: FindProxyForURLEx when the script defines it (Microsoft's rule). */
  private entrypoint(context: QuickJSContext): string | undefined {
    for (const name of ['FindProxyForURLEx', 'FindProxyForURL']) {
      const handle = context.getProp(context.global, name);
      const isFunction = context.typeof(handle) === 'function';
      handle.dispose();
      if (isFunction) return name;
    }
    return undefined;
  }

  private begin(scope: AttemptScope, timeoutMs: number): void {
    this.scope = scope;
    this.interrupted = false;
    this.deadline = Date.now() + timeoutMs;
  }

  /** Stops the script at the deadline, or at once after a DNS miss (see engine.ts, restart-on-miss). */
  private shouldInterrupt(): boolean {
    if (this.scope && this.scope.pending.size > 0) return (this.interrupted = true);
    if (Date.now() > this.deadline) return (this.interrupted = true);
    return false;
  }

  /** Classifies a value the script threw (or QuickJS raised): the one place that does. */
  private classify(context: QuickJSContext, errorHandle: QuickJSHandle, phase: 'load' | 'call', fn = 'the PAC script'): PacFailure {
    if (this.interrupted) {
      return phase === 'load'
        ? new PacFailure('load-timeout', `the PAC script did not finish loading within ${this.limits.loadTimeoutMs} ms`)
        : new PacFailure('timeout', `${fn} did not return within ${this.limits.callTimeoutMs} ms`);
    }
    const { name, message } = this.describeThrown(context, errorHandle);
    if (name === 'InternalError' && (message === 'out of memory' || message === 'stack overflow')) {
      const what = message === 'out of memory' ? `memory limit (${this.limits.memoryBytes} bytes)` : 'stack limit';
      return new PacFailure('resource-limit', `${fn} exceeded the ${what}`);
    }
    if (phase === 'load' && name === 'SyntaxError') return new PacFailure('syntax', `syntax error in the PAC script: ${message}`);
    const what = phase === 'load' ? 'the PAC script threw while loading' : `${fn} threw`;
    return new PacFailure('exception', `${what}: ${name ? `${name}: ${message}` : message}`);
  }

  /** name/message of an Error, or the text of any other thrown value (a thrown string keeps its text). */
  private describeThrown(context: QuickJSContext, handle: QuickJSHandle): { name?: string; message: string } {
    const clip = (s: string) => (s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)}…` : s);
    const type = context.typeof(handle);
    if (type === 'object') {
      const nameHandle = context.getProp(handle, 'name');
      const messageHandle = context.getProp(handle, 'message');
      const name = context.typeof(nameHandle) === 'string' ? context.getString(nameHandle) : undefined;
      const message = context.typeof(messageHandle) === 'string' ? context.getString(messageHandle) : undefined;
      nameHandle.dispose();
      messageHandle.dispose();
      if (message !== undefined) return { name: name && clip(name), message: clip(message) };
      return { message: 'a non-Error object was thrown' };
    }
    if (type === 'string') return { message: clip(context.getString(handle)) };
    if (type === 'number') return { message: String(context.getNumber(handle)) };
    return { message: `${type} was thrown` };
  }

  /** Any failure as an outcome; a host-side failure (a wasm trap) also discards the whole instance. */
  private failure(error: unknown, phase: 'load' | 'call'): AttemptOutcome {
    if (error instanceof PacFailure) return { ok: false, pacClass: error.pacClass, message: error.message };
    this.release(true);
    const what = phase === 'load' ? 'loading the PAC script' : 'running the PAC script';
    return { ok: false, pacClass: 'resource-limit', message: `${what} broke the sandbox (${error instanceof Error ? error.message : String(error)})` };
  }

  /** Frees the runtime; with dropModule (or when QuickJS refuses) the wasm instance and its memory too. */
  release(dropModule = false): void {
    try {
      if (this.context?.alive) this.context.dispose();
      if (this.runtime?.alive) this.runtime.dispose();
    } catch {
      dropModule = true;
    }
    this.context = undefined;
    this.runtime = undefined;
    if (dropModule) this.module = undefined; // left to the GC with its linear memory
  }
}
