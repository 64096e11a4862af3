// `ferry doctor`: run the probes (or analyze a trace) and print a checklist or one JSON document.
// Exit codes (DESIGN.md): 0 all checks pass (warnings allowed), 1 any check failed, 2 usage or
// configuration error.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { analyzeTrace, renderJson, renderText, renderTraceSummary, runDoctor } from '../doctor/index.js';
import { captureTrace } from '../doctor/capture.js';
import { UsageError } from '../shared/errors.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runAction } from './run-action.js';

interface DoctorCliOptions {
  config?: string;
  updaterConfig?: string;
  json?: boolean;
  capture?: string;
  analyze?: string;
  backend?: string[];
  timeout?: string;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('test every step from this connector to the relay (config, routes, DNS, WPAD/PAC, TCP, CONNECT, TLS, certificate, clock, tunnels) and name the fix')
    .option('--config <file>', 'connector configuration (YAML, or a .NET .config)')
    .option('--updater-config <file>', "the updater's config file (updater.yaml, whose proxyConfig and machineConfig keys are followed, or its .NET .config; default: the machine-wide file decides)")
    .option('--json', 'print one JSON document {checks:[{id,status,target,details,fix,errorClass}],...}')
    .option('--capture <seconds>', "run the connector's tunnels for this long with the trace on, then analyze the trace")
    .option('--analyze <trace>', 'summarise a trace file written by "ferry connector run --trace FILE"')
    .option('--backend <url>', 'also test this internal app URL from here (repeatable)', collect, [])
    .option('--timeout <ms>', 'time limit per probe (default: directTimeoutMs from the config, 5000)')
    .action(runAction(async (options: DoctorCliOptions) => {
      if (options.analyze && options.capture) throw new UsageError('--analyze and --capture cannot be combined', 'use one of them');
      if (options.analyze) {
        let text: string;
        try {
          text = readFileSync(options.analyze, 'utf8');
        } catch (error) {
          throw new UsageError(`cannot read the trace ${options.analyze} (${(error as NodeJS.ErrnoException).code})`, 'give the file written by "ferry connector run --trace FILE"');
        }
        const summary = analyzeTrace(text);
        process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : renderTraceSummary(summary));
        return summary.attempts > 0 && summary.outcomes.every((o) => o.workingRoute !== undefined) ? EXIT_OK : EXIT_FAILURE;
      }
      const timeoutMs = numberOption(options.timeout, '--timeout');
      if (options.capture) {
        const seconds = numberOption(options.capture, '--capture')!;
        const summary = await captureTrace({ configFile: options.config, seconds, progress: (m) => process.stderr.write(`ferry doctor: ${m}\n`) });
        process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : renderTraceSummary(summary));
        return summary.attempts > 0 && summary.outcomes.every((o) => o.workingRoute !== undefined) ? EXIT_OK : EXIT_FAILURE;
      }
      // On a terminal, one self-overwriting progress line; never in logs or pipes.
      const showProgress = process.stderr.isTTY === true;
      const run = await runDoctor({
        configFile: options.config,
        ...(options.updaterConfig ? { updaterConfigFile: options.updaterConfig } : {}),
        ...(options.backend?.length ? { backends: options.backend } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        // Long checks say what they are doing, on stderr, so stdout stays one document.
        progress: (message) => { if (showProgress) process.stderr.write(`\r\x1b[K  … ${message}`); },
      });
      if (showProgress) process.stderr.write('\r\x1b[K');
      process.stdout.write(options.json ? renderJson(run.report) : renderText(run.report));
      if (run.configError) return EXIT_USAGE;
      return run.report.status === 'fail' ? EXIT_FAILURE : EXIT_OK;
    }));
}

function numberOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new UsageError(`${name} ${value} is not a positive number`);
  return parsed;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
