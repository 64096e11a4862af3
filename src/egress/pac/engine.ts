// src/egress/pac — the PAC engine: QuickJS (WebAssembly) sandbox, PAC builtins, result parsing and
// the decision cache. Imports src/shared and ../types only; opens no sockets (DNS comes in through
// PacEnvironment.resolve).
//
// Why QuickJS in WebAssembly: a PAC file is code from the network (WPAD). node:vm shares the host's
// heap and event loop and cannot bound memory; QuickJS runs in its own linear memory with a stack
// limit (setMaxStackSize) and an interrupt handler that we use as a per-call deadline. Each engine
// gets its own WebAssembly module instance, so a script that wrecks its runtime (or a wasm trap)
// costs only that instance: we throw it away and load again.
//
// Memory: runtime.setMemoryLimit alone does NOT bound a runtime's total in the prebuilt wasm
// (QuickJS's accounting needs malloc_usable_size, which its Emscripten build lacks, so the limit
// only bounds single allocations: justjake/quickjs-emscripten#255 and #271). We therefore also give
// each module its own WebAssembly.Memory with a fixed maximum (a baseline for QuickJS itself plus
// limits.memoryBytes); when the script's heap reaches it, malloc fails and QuickJS raises a clean
// "out of memory" that we classify as resource-limit. The Node process never grows past that.
//
// DNS design (restart-on-miss): PAC's dnsResolve/isResolvable/isInNet are synchronous in JS but
// DNS is asynchronous in Node. We keep the sync build of QuickJS (the asyncify build doubles the
// code size, is slower, and suspending inside the interpreter complicates the time limit) and
// instead, when the script asks for a name this evaluation has not resolved yet, the builtin
// records the name, answers null and raises an abort flag; the interrupt handler sees the flag and
// stops the script with an uncatchable interrupt (a try/catch in the script cannot swallow it, and
// whatever it did with the null is discarded). We then resolve every recorded name with
// env.resolve, in parallel, and run the call again with the answers cached for this evaluation.
// Restarts are bounded (MAX_DNS_RESTARTS); on the last attempt unresolved names answer "not
// resolvable" instead of restarting. alert() output of aborted attempts is dropped so each
// evaluation alerts once. Each attempt gets the full time limit; DNS time is the resolver's to bound.
import { createHash } from 'node:crypto';
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
import { PacError } from './errors.js';
import { clockFields } from './time.js';
import type { PacEngine, PacEnvironment, PacErrorClass, PacLimits } from './types.js';

const DEFAULT_CALL_TIMEOUT_MS = 200;
const DEFAULT_LOAD_TIMEOUT_MS = 500;
const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;
/** QuickJS stack limit. Well under Node's own stack, so deep recursion fails inside QuickJS, cleanly. */
const MAX_STACK_BYTES = 256 * 1024;
const MAX_DNS_RESTARTS = 8;
const WASM_PAGE_BYTES = 64 * 1024;
// The WebAssembly global is in Node but not in the ES2023 lib this project compiles against.
const WASM = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => object } }).WebAssembly;
/** Linear memory QuickJS needs before any script runs (static data, stack, runtime): 16 MiB. */
const BASELINE_WASM_PAGES = 256;
/** Distinct names one evaluation may resolve; beyond that, names answer "not resolvable". */
const MAX_NAMES_PER_EVALUATION = 32;
const MAX_MESSAGE_CHARS = 500;
const DISPATCHER_GLOBAL = '__ferryPacHost';

type Outcome<T> = { ok: true; value: T } | { ok: false; error: PacError };
type Interrupt = 'deadline' | 'dns' | undefined;


/** One evaluation's DNS answers, plus the names it asked for and we have not resolved yet. */
class EvaluationScope implements BuiltinScope {
  readonly answers = new Map<string, readonly string[]>();
  pending = new Set<string>();
  alerts: string[] = [];
  /** On the final attempt a miss answers "not resolvable" instead of restarting. */
  finalAttempt = false;
  private readonly now: Date;

  constructor(private readonly env: PacEnvironment) {
    this.now = env.now();
  }

  lookup(host: string): readonly string[] | undefined {
    const key = host.toLowerCase();
    const known = this.answers.get(key);
    if (known) return known;
    if (this.finalAttempt || this.answers.size + this.pending.size >= MAX_NAMES_PER_EVALUATION) return [];
    this.pending.add(key);
    return undefined;
  }

  myAddresses(): readonly string[] {
    return this.env.myAddresses();
  }

  clock = (gmt: boolean) => clockFields(this.now, gmt ? 'GMT' : this.env.timeZone);

  nowMs(): number {
    return this.now.getTime();
  }

  alert(message: string): void {
    this.alerts.push(message);
  }

  async resolvePending(): Promise<void> {
    const names = [...this.pending];
    this.pending = new Set();
    const results = await Promise.all(names.map((name) => this.env.resolve(name).catch(() => [] as string[])));
    names.forEach((name, i) => this.answers.set(name, results[i]));
  }
}

/** A live QuickJS runtime + context with the script loaded. Thrown away whole when poisoned. */
interface Sandbox {
  module: QuickJSWASMModule;
  runtime: QuickJSRuntime;
  context: QuickJSContext;
}

class QuickJsPacEngine implements PacEngine {
  readonly sha1: string;
  private sandbox: Sandbox | undefined;
  private module: QuickJSWASMModule | undefined;
  private deadline = 0;
  private interrupt: Interrupt;
  private scope: EvaluationScope | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly callTimeoutMs: number;
  private readonly loadTimeoutMs: number;
  private readonly memoryBytes: number;

  constructor(
    private readonly script: string,
    private readonly env: PacEnvironment,
    limits: PacLimits,
  ) {
    this.sha1 = createHash('sha1').update(script).digest('hex');
    this.callTimeoutMs = limits.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.loadTimeoutMs = limits.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    this.memoryBytes = limits.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  }

  /** Loads the script in a fresh sandbox; throws PacError when it cannot be loaded. */
  async load(): Promise<void> {
    const scope = new EvaluationScope(this.env);
    for (let attempt = 0; ; attempt++) {
      scope.finalAttempt = attempt === MAX_DNS_RESTARTS;
      this.module ??= await this.newModule();
      const outcome = this.tryLoad(scope, this.module);
      if (scope.pending.size > 0) {
        // The script asked for a name we had not resolved: whatever it did with the null is void.
        if (outcome.ok) this.releaseQuietly(outcome.value.context, outcome.value.runtime);
        await scope.resolvePending();
        scope.alerts = [];
        continue;
      }
      if (outcome.ok) {
        this.sandbox = outcome.value;
        this.flushAlerts(scope);
        return;
      }
      this.flushAlerts(scope);
      throw outcome.error;
    }
  }

  /** A QuickJS instance whose linear memory cannot grow past the baseline plus the memory limit. */
  private newModule(): Promise<QuickJSWASMModule> {
    const wasmMemory = new WASM.Memory({
      initial: BASELINE_WASM_PAGES,
      maximum: BASELINE_WASM_PAGES + Math.ceil(this.memoryBytes / WASM_PAGE_BYTES),
    });
    return newQuickJSWASMModule(newVariant(RELEASE_SYNC, { wasmMemory: wasmMemory as Parameters<typeof newVariant>[1]['wasmMemory'] }));
  }

  private tryLoad(scope: EvaluationScope, module: QuickJSWASMModule): Outcome<Sandbox> {
    let runtime: QuickJSRuntime | undefined;
    let context: QuickJSContext | undefined;
    try {
      runtime = module.newRuntime();
      runtime.setMemoryLimit(this.memoryBytes);
      runtime.setMaxStackSize(MAX_STACK_BYTES);
      runtime.setInterruptHandler(() => this.shouldInterrupt());
      context = runtime.newContext();
      this.installDispatcher(context);
      this.begin(scope, this.loadTimeoutMs);
      const prelude = context.evalCode(sandboxPrelude(DISPATCHER_GLOBAL), 'pac-prelude.js');
      if (prelude.error) {
        const error = this.classify(context, prelude.error, 'load');
        prelude.error.dispose();
        throw error;
      }
      prelude.value.dispose();
      const loaded = context.evalCode(this.script, 'proxy.pac');
      if (loaded.error) {
        const error = this.classify(context, loaded.error, 'load');
        loaded.error.dispose();
        throw error;
      }
      loaded.value.dispose();
      if (!this.entrypoint(context)) {
        throw new PacError('no-entrypoint', 'the PAC script defines neither FindProxyForURL nor FindProxyForURLEx');
      }
      return { ok: true, value: { module, runtime, context } };
    } catch (error) {
      this.releaseQuietly(context, runtime);
      return { ok: false, error: this.asPacError(error, 'load') };
    } finally {
      this.scope = undefined;
    }
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

  private begin(scope: EvaluationScope, timeoutMs: number): void {
    this.scope = scope;
    this.interrupt = undefined;
    this.deadline = Date.now() + timeoutMs;
  }

  private shouldInterrupt(): boolean {
    if (this.scope && this.scope.pending.size > 0) {
      this.interrupt = 'dns';
      return true;
    }
    if (Date.now() > this.deadline) {
      this.interrupt = 'deadline';
      return true;
    }
    return false;
  }

  findProxy(url: string, host: string): Promise<string> {
    const run = this.queue.then(() => this.evaluate(url, host));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async evaluate(url: string, host: string): Promise<string> {
    if (this.disposed) throw new Error('PAC engine used after dispose()');
    if (!this.sandbox) await this.load();
    const scope = new EvaluationScope(this.env);
    for (let attempt = 0; ; attempt++) {
      scope.finalAttempt = attempt === MAX_DNS_RESTARTS;
      const outcome = this.tryCall(scope, url, host);
      if (scope.pending.size > 0) {
        // A DNS miss: the answer (or error) was computed from a null stand-in; resolve and run again.
        await scope.resolvePending();
        scope.alerts = [];
        continue;
      }
      if (outcome.ok) {
        this.flushAlerts(scope);
        return outcome.value;
      }
      this.flushAlerts(scope);
      if (outcome.error.pacClass === 'timeout' || outcome.error.pacClass === 'resource-limit') {
        // An interrupted or out-of-memory runtime may hold half-updated state: start over next time.
        // After a memory bomb, also hand the grown linear memory back to the host.
        this.discardSandbox(outcome.error.pacClass === 'resource-limit');
      }
      throw outcome.error;
    }
  }

  private tryCall(scope: EvaluationScope, url: string, host: string): Outcome<string> {
    const { context } = this.sandbox as Sandbox;
    try {
      const name = this.entrypoint(context);
      if (!name) throw new PacError('no-entrypoint', 'the PAC script no longer defines FindProxyForURL');
      const fn = context.getProp(context.global, name);
      const urlHandle = context.newString(url);
      const hostHandle = context.newString(host);
      this.begin(scope, this.callTimeoutMs);
      const result = context.callFunction(fn, context.undefined, urlHandle, hostHandle);
      fn.dispose();
      urlHandle.dispose();
      hostHandle.dispose();
      if (result.error) {
        const error = this.classify(context, result.error, 'call', name);
        result.error.dispose();
        throw error;
      }
      const type = context.typeof(result.value);
      const text = type === 'string' ? context.getString(result.value) : undefined;
      result.value.dispose();
      if (text === undefined) {
        throw new PacError('non-string-result', `${name} returned ${type === 'object' ? 'an object or null' : type}, not a string`);
      }
      return { ok: true, value: text };
    } catch (error) {
      return { ok: false, error: this.asPacError(error, 'call') };
    } finally {
      this.scope = undefined;
    }
  }

  /** Classifies a value the script threw (or QuickJS raised) — the one place that does. */
  private classify(context: QuickJSContext, errorHandle: QuickJSHandle, phase: 'load' | 'call', fn = 'the PAC script'): PacError {
    if (this.interrupt !== undefined) {
      return phase === 'load'
        ? new PacError('load-timeout', `the PAC script did not finish loading within ${this.loadTimeoutMs} ms`)
        : new PacError('timeout', `${fn} did not return within ${this.callTimeoutMs} ms`);
    }
    const { name, message } = this.describeThrown(context, errorHandle);
    if (name === 'InternalError' && (message === 'out of memory' || message === 'stack overflow')) {
      return new PacError('resource-limit', `${fn} exceeded the ${message === 'out of memory' ? `memory limit (${this.memoryBytes} bytes)` : 'stack limit'}`);
    }
    if (phase === 'load' && name === 'SyntaxError') return new PacError('syntax', `syntax error in the PAC script: ${message}`);
    const what = phase === 'load' ? 'the PAC script threw while loading' : `${fn} threw`;
    return new PacError('exception', `${what}: ${name ? `${name}: ${message}` : message}`);
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

  /** Any failure as a PacError; host-side failures (a wasm trap, a Node stack overflow) poison the module. */
  private asPacError(error: unknown, phase: 'load' | 'call'): PacError {
    if (error instanceof PacError) return error;
    this.discardSandbox(true);
    const pacClass: PacErrorClass = 'resource-limit';
    const what = phase === 'load' ? 'loading the PAC script' : 'running the PAC script';
    return new PacError(pacClass, `${what} broke the sandbox (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }

  private discardSandbox(dropModule = false): void {
    const sandbox = this.sandbox;
    this.sandbox = undefined;
    if (sandbox && !this.releaseQuietly(sandbox.context, sandbox.runtime)) dropModule = true;
    // A fresh module instance is the only certain way back after a trap: the old one is left to GC.
    if (dropModule) this.module = undefined;
  }

  /** Frees a context and runtime; false when QuickJS refused (then the module is not trusted again). */
  private releaseQuietly(context: QuickJSContext | undefined, runtime: QuickJSRuntime | undefined): boolean {
    try {
      if (context?.alive) context.dispose();
      if (runtime?.alive) runtime.dispose();
      return true;
    } catch {
      return false;
    }
  }

  private flushAlerts(scope: EvaluationScope): void {
    for (const message of scope.alerts) this.env.alert?.(message);
    scope.alerts = [];
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.discardSandbox(true);
  }
}

/**
 * Loads a PAC script into a fresh sandbox. Rejects with PacError (`syntax`, `no-entrypoint`,
 * `load-timeout`, `exception`, `resource-limit`) when the script cannot be loaded.
 */
export async function createPacEngine(script: string, env: PacEnvironment, limits: PacLimits = {}): Promise<PacEngine> {
  const engine = new QuickJsPacEngine(script, env, limits);
  await engine.load();
  return engine;
}
