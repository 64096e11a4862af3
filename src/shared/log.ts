// The structured logger: pino, JSON lines on stderr (stdout is for command output and --json).
// Every message and string field is passed through redact() so no credential is ever logged.
import { pino, destination, stdSerializers, stdTimeFunctions, type Logger } from 'pino';
import { redact } from './redact.js';

export type { Logger };

export function createLogger(name: string, level = process.env.FERRY_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: stdTimeFunctions.isoTime,
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => redactValue(arg)) as Parameters<typeof method>);
      },
    },
    serializers: { err: (err: unknown) => redactValue(stdSerializers.err(err as Error)) },
  }, destination({ fd: 2, sync: false }));
}

function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = /password|secret|token|authorization/i.test(key) && typeof item === 'string' ? '***' : redactValue(item, depth + 1);
  }
  return out;
}

/** A logger that drops everything, for library code called without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
