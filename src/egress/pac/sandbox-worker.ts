// The worker thread that hosts one QuickJsSandbox. The engine's watchdog can terminate this thread
// when a script outruns the interrupt handler (QuickJS only polls it between bytecodes, so one long
// builtin call such as a catastrophic regular expression or a huge join() can run on for seconds).
import { parentPort, workerData } from 'node:worker_threads';
import { QuickJsSandbox, type AttemptInput, type AttemptOutput, type SandboxLimits } from './sandbox.js';

export type WorkerRequest =
  | { id: number; op: 'load'; input: AttemptInput }
  | { id: number; op: 'call'; url: string; host: string; input: AttemptInput };

/** `ready` once QuickJS is instantiated, then one answer per request. */
export type WorkerResponse = { ready: true } | { id: number; output: AttemptOutput };

const { script, limits } = workerData as { script: string; limits: SandboxLimits };
const sandbox = new QuickJsSandbox(script, limits);
const port = parentPort;
void sandbox.prepare().then(() => port?.postMessage({ ready: true } satisfies WorkerResponse));

port?.on('message', (request: WorkerRequest) => {
  void (async () => {
    let output: AttemptOutput;
    if (request.op === 'load') output = await sandbox.load(request.input);
    else if (sandbox.loaded) output = sandbox.call(request.url, request.host, request.input);
    else output = { outcome: { ok: false, pacClass: 'resource-limit', message: 'the PAC sandbox is not loaded' }, pending: [], alerts: [], poisoned: true };
    port.postMessage({ id: request.id, output } satisfies WorkerResponse);
  })();
});
