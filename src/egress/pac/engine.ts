// src/egress/pac — the PAC engine: QuickJS (WebAssembly) sandbox, PAC builtins, result parsing and
// the decision cache. Imports src/shared and ../types only; opens no sockets (DNS comes in through
// PacEnvironment.resolve).
//
// Why QuickJS in WebAssembly: a PAC file is code from the network (WPAD). node:vm shares the host's
// heap and event loop and cannot bound memory; QuickJS runs in its own linear memory with a fixed
// maximum, a stack limit and an interrupt handler we use as the per-call deadline (sandbox.ts).
//
// Why a worker thread: QuickJS polls its interrupt handler only between bytecodes, so a single long
// builtin call (a catastrophic regular expression, new Array(1e7).join()) can run on for seconds
// with no chance to stop it in-thread. The sandbox therefore lives in a worker thread
// (sandbox-worker.ts) and a watchdog here terminates the thread when an attempt overruns its limit
// by WATCHDOG_GRACE_MS. The next call starts a new worker and loads the script again. The Node
// process itself never runs the script, so it stays healthy whatever the script does.
//
// DNS design (restart-on-miss): PAC's dnsResolve/isResolvable/isInNet are synchronous in JS but
// DNS is asynchronous in Node. We keep the sync build of QuickJS (the asyncify build is larger and
// slower, and suspending inside the interpreter complicates the time limit) and instead, when the
// script asks for a name this evaluation has not resolved yet, the builtin records the name,
// answers null and the interrupt handler stops the script at its next poll with an uncatchable
// interrupt (a try/catch in the script cannot swallow it, and whatever it did with the null is
// discarded). We then resolve every recorded name with env.resolve, in parallel, and run the
// attempt again with the answers cached for this evaluation. Restarts are bounded
// (MAX_DNS_RESTARTS) and so are names per evaluation (MAX_NAMES_PER_EVALUATION); past either bound,
// names answer "not resolvable". alert() output of discarded attempts is dropped, so each evaluation
// alerts once. DNS time is the resolver's to bound; each attempt gets the full time limit.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { PacError } from './errors.js';
import type { AttemptInput, AttemptOutput, SandboxLimits } from './sandbox.js';
import type { WorkerRequest, WorkerResponse } from './sandbox-worker.js';
import type { PacEngine, PacEnvironment, PacLimits } from './types.js';

const DEFAULT_CALL_TIMEOUT_MS = 200;
const DEFAULT_LOAD_TIMEOUT_MS = 500;
const DEFAULT_MEMORY_BYTES = 16 * 1024 * 1024;
const MAX_DNS_RESTARTS = 8;
/** How long past its limit an attempt may run before the watchdog terminates the worker. */
const WATCHDOG_GRACE_MS = 250;
/** How long a new worker may take to start and instantiate QuickJS. */
const WORKER_START_TIMEOUT_MS = 10_000;
const WORKER_URL = new URL('./sandbox-worker.js', import.meta.url);

/** One evaluation's DNS answers, clock and addresses, shared by its attempts. */
class Evaluation {
  private readonly answers = new Map<string, string[]>();
  private readonly nowMs: number;
  private readonly myAddresses: string[];

  constructor(private readonly env: PacEnvironment) {
    this.nowMs = env.now().getTime();
    this.myAddresses = [...env.myAddresses()];
  }

  input(attempt: number): AttemptInput {
    return {
      answers: [...this.answers],
      myAddresses: this.myAddresses,
      nowMs: this.nowMs,
      timeZone: this.env.timeZone,
      finalAttempt: attempt >= MAX_DNS_RESTARTS,
    };
  }

  async resolve(names: string[]): Promise<void> {
    const results = await Promise.all(names.map((name) => this.env.resolve(name).catch(() => [] as string[])));
    names.forEach((name, i) => this.answers.set(name, [...results[i]]));
  }
}

function stopped(message: string): AttemptOutput {
  return { outcome: { ok: false, pacClass: 'resource-limit', message }, pending: [], alerts: [], poisoned: true };
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface InFlight {
  id: number;
  settle(output: AttemptOutput): void;
}

class QuickJsPacEngine implements PacEngine {
  readonly sha1: string;
  private readonly limits: SandboxLimits;
  private worker: Promise<Worker> | undefined;
  private inFlight: InFlight | undefined;
  private nextId = 1;
  private needsLoad = true;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly script: string,
    private readonly env: PacEnvironment,
    limits: PacLimits,
  ) {
    this.sha1 = createHash('sha1').update(script).digest('hex');
    this.limits = {
      callTimeoutMs: limits.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      loadTimeoutMs: limits.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS,
      memoryBytes: limits.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    };
  }

  /** Starts a worker and waits until QuickJS is instantiated in it. */
  private spawnWorker(): Promise<Worker> {
    const worker = new Worker(WORKER_URL, {
      workerData: { script: this.script, limits: this.limits },
      // The script's own heap is the wasm memory (bounded in sandbox.ts); this bounds the thread's JS.
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
    });
    const ready = new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new PacError('resource-limit', `the PAC sandbox did not start within ${WORKER_START_TIMEOUT_MS} ms`));
      }, WORKER_START_TIMEOUT_MS);
      const lost = (reason: string) => {
        clearTimeout(timer);
        reject(new PacError('resource-limit', `the PAC sandbox could not start: ${reason}`));
        if (this.worker !== ready) return; // an old worker (already replaced or disposed) going away
        this.worker = undefined;
        this.needsLoad = true;
        this.inFlight?.settle(stopped(`the PAC sandbox stopped: ${reason}`));
      };
      worker.on('message', (response: WorkerResponse) => {
        if ('ready' in response) {
          clearTimeout(timer);
          worker.unref(); // an idle engine must not keep the process alive
          resolve(worker);
        } else if (this.inFlight?.id === response.id) {
          this.inFlight.settle(response.output);
        }
      });
      worker.on('error', (error) => lost(error.message));
      worker.on('exit', (code) => lost(`worker exited with code ${code}`));
    });
    ready.catch(() => undefined);
    this.worker = ready;
    this.needsLoad = true;
    return ready;
  }

  /** Sends one attempt to the worker; the watchdog answers `timeout` (and kills the worker) if it overruns. */
  private async attempt(request: WithoutId<WorkerRequest>): Promise<AttemptOutput> {
    const workerPromise = this.worker ?? this.spawnWorker();
    const worker = await workerPromise;
    const id = this.nextId++;
    const isLoad = request.op === 'load';
    const limitMs = isLoad ? this.limits.loadTimeoutMs : this.limits.callTimeoutMs;
    const budgetMs = limitMs + WATCHDOG_GRACE_MS;
    return new Promise<AttemptOutput>((resolve) => {
      const timer = setTimeout(() => {
        // The script is stuck inside one builtin call: only terminating the thread stops it.
        if (this.worker === workerPromise) {
          this.worker = undefined;
          this.needsLoad = true;
        }
        void worker.terminate();
        settle({
          outcome: isLoad
            ? { ok: false, pacClass: 'load-timeout', message: `the PAC script did not finish loading within ${limitMs} ms (stopped by the watchdog)` }
            : { ok: false, pacClass: 'timeout', message: `the PAC function did not return within ${limitMs} ms (stopped by the watchdog)` },
          pending: [],
          alerts: [],
          poisoned: true,
        });
      }, budgetMs);
      const settle = (output: AttemptOutput) => {
        clearTimeout(timer);
        if (this.inFlight?.id === id) this.inFlight = undefined;
        if (this.worker === workerPromise) worker.unref();
        resolve(output);
      };
      this.inFlight = { id, settle };
      worker.ref(); // keep the process alive while an answer is awaited
      worker.postMessage({ ...request, id } as WorkerRequest);
    });
  }

  /** Loads the script (again), restarting on DNS misses; throws PacError when it cannot be loaded. */
  async load(): Promise<void> {
    const evaluation = new Evaluation(this.env);
    for (let attempt = 0; ; attempt++) {
      const output = await this.attempt({ op: 'load', input: evaluation.input(attempt) });
      if (output.pending.length > 0) {
        await evaluation.resolve(output.pending);
        continue;
      }
      this.flushAlerts(output);
      if (output.outcome.ok) {
        this.needsLoad = false;
        return;
      }
      throw new PacError(output.outcome.pacClass, output.outcome.message);
    }
  }

  findProxy(url: string, host: string): Promise<string> {
    const run = this.queue.then(() => this.evaluate(url, host));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async evaluate(url: string, host: string): Promise<string> {
    if (this.disposed) throw new Error('PAC engine used after dispose()');
    if (this.needsLoad || !this.worker) await this.load();
    const evaluation = new Evaluation(this.env);
    for (let attempt = 0; ; attempt++) {
      const output = await this.attempt({ op: 'call', url, host, input: evaluation.input(attempt) });
      if (output.poisoned) this.needsLoad = true;
      if (output.pending.length > 0) {
        // A DNS miss: the answer (or error) was computed from a null stand-in; resolve and run again.
        await evaluation.resolve(output.pending);
        if (this.needsLoad) await this.load();
        continue;
      }
      this.flushAlerts(output);
      if (output.outcome.ok) return output.outcome.value;
      throw new PacError(output.outcome.pacClass, output.outcome.message);
    }
  }

  private flushAlerts(output: AttemptOutput): void {
    for (const message of output.alerts) this.env.alert?.(message);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const worker = this.worker;
    this.worker = undefined;
    void worker?.then((w) => w.terminate(), () => undefined);
    this.inFlight?.settle(stopped('the PAC engine was disposed'));
  }
}

/**
 * Loads a PAC script into a fresh sandbox. Rejects with PacError (`syntax`, `no-entrypoint`,
 * `load-timeout`, `exception`, `resource-limit`) when the script cannot be loaded.
 */
export async function createPacEngine(script: string, env: PacEnvironment, limits: PacLimits = {}): Promise<PacEngine> {
  const engine = new QuickJsPacEngine(script, env, limits);
  try {
    await engine.load();
  } catch (error) {
    engine.dispose();
    throw error;
  }
  return engine;
}
