// Updater test fixtures: packaged connector releases (gzip tars of an install root built from this
// checkout's dist/), an install folder with a first version in place, and the "restart command": a
// shell script that stops the connector it started last time (pid file) and starts one from
// current/, as a systemd unit would.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FERRY_MAIN } from './ferry-cli.js';
import { cleanupOnExit, sleep } from './processes.js';
import type { FerryStack } from './ferry-stack.js';

/** dist/src of this checkout (what a release packages). */
const DIST_SRC = path.dirname(path.dirname(FERRY_MAIN));
const NODE_MODULES = realpathSync(path.join(DIST_SRC, '..', '..', 'node_modules'));

/**
 * A release file: package.json (name, version, "type": "module"), dist/src and node_modules (a
 * symlink to this checkout's install, to keep the archive small). `broken` ships a CLI that exits
 * at once, so its connector never connects; `paddingBytes` adds incompressible bytes (slow downloads).
 */
export function packageRelease(outDir: string, version: string, options: { broken?: boolean; paddingBytes?: number } = {}): string {
  const stage = path.join(outDir, `stage-${version}-${options.broken ? 'broken' : 'ok'}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(path.join(stage, 'dist'), { recursive: true });
  writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify({ name: 'ferry', version, type: 'module' })}\n`);
  if (options.broken) {
    mkdirSync(path.join(stage, 'dist', 'src', 'cli'), { recursive: true });
    writeFileSync(path.join(stage, 'dist', 'src', 'cli', 'main.js'), "process.stderr.write('ferry (broken build): exiting\\n');\nprocess.exit(3);\n");
  } else {
    cpSync(DIST_SRC, path.join(stage, 'dist', 'src'), { recursive: true, filter: (source) => !source.endsWith('.map') });
    symlinkSync(NODE_MODULES, path.join(stage, 'node_modules'));
  }
  if (options.paddingBytes) writeFileSync(path.join(stage, 'padding.bin'), randomBytes(options.paddingBytes));
  const file = path.join(outDir, `ferry-${version}${options.broken ? '-broken' : ''}${options.paddingBytes ? '-big' : ''}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', stage, '.']);
  rmSync(stage, { recursive: true, force: true });
  return file;
}

export interface InstalledConnector {
  name: string;
  installDir: string;
  configFile: string;
  restartScript: string;
  pidFile: string;
  /** The connector's own log (appended by every start). */
  log(): string;
  pid(): number | undefined;
  /** Where `current` points (e.g. "versions/1.0.0"). */
  current(): string;
  versions(): string[];
  /** Runs the restart script (starts the connector from current/). */
  restart(): void;
  stop(): Promise<void>;
}

/** Registers a connector, installs `firstRelease` as version `firstVersion` and starts it from current/. */
export async function installConnector(stack: FerryStack, options: { name: string; group: string; firstRelease: string; firstVersion: string }): Promise<InstalledConnector> {
  const registered = await stack.registerConnector({ name: options.name, group: options.group, config: { transport: 'tcp' } });
  if (registered.run.code !== 0) throw new Error(`register failed: ${registered.run.stderr}`);
  const installDir = path.join(stack.dir, `${options.name}-install`);
  const versionDir = path.join(installDir, 'versions', options.firstVersion);
  mkdirSync(versionDir, { recursive: true });
  execFileSync('tar', ['-xzf', options.firstRelease, '-C', versionDir]);
  symlinkSync(path.join('versions', options.firstVersion), path.join(installDir, 'current'));
  const pidFile = path.join(installDir, 'connector.pid');
  const logFile = path.join(installDir, 'connector.log');
  const restartScript = path.join(installDir, 'restart-connector.sh');
  writeFileSync(restartScript, [
    '#!/bin/sh',
    '# Test restart command: stop the connector started last time, start one from current/.',
    `PIDFILE='${pidFile}'`,
    'if [ -f "$PIDFILE" ]; then',
    '  PID=$(cat "$PIDFILE")',
    '  kill "$PID" 2>/dev/null',
    '  i=0',
    '  while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
    '  kill -9 "$PID" 2>/dev/null',
    '  rm -f "$PIDFILE"',
    'fi',
    `CURRENT="\${FERRY_CURRENT:-${path.join(installDir, 'current')}}"`,
    `env -u FERRY_CONNECTOR_VERSION FERRY_LOG_LEVEL=info '${process.execPath}' "$CURRENT/dist/src/cli/main.js" connector run --config '${registered.configFile}' >> '${logFile}' 2>&1 < /dev/null &`,
    'echo $! > "$PIDFILE"',
    '',
  ].join('\n'));
  chmodSync(restartScript, 0o755);
  const pid = (): number | undefined => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) || undefined : undefined);
  const kill = () => {
    const running = pid();
    if (running) {
      try {
        process.kill(running, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const forget = cleanupOnExit(kill);
  const connector: InstalledConnector = {
    name: options.name,
    installDir,
    configFile: registered.configFile,
    restartScript,
    pidFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    pid,
    current: () => execFileSync('readlink', [path.join(installDir, 'current')], { encoding: 'utf8' }).trim(),
    versions: () => (existsSync(path.join(installDir, 'versions')) ? execFileSync('ls', [path.join(installDir, 'versions')], { encoding: 'utf8' }).split('\n').filter(Boolean).sort() : []),
    restart: () => execFileSync('/bin/sh', [restartScript], { stdio: 'ignore' }),
    async stop() {
      const running = pid();
      if (running) {
        try {
          process.kill(running, 'SIGTERM');
        } catch {
          // already gone
        }
        for (let i = 0; i < 50 && alive(running); i++) await sleep(100);
        kill();
      }
      forget();
    },
  };
  connector.restart();
  return connector;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ConnectorListing {
  name: string;
  version: string | null;
  online: boolean;
}

/** Polls `ferry relay connectors list --json` until `name` reports `version` (bounded). */
export async function waitForConnectorVersion(stack: FerryStack, name: string, version: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ConnectorListing | undefined;
  while (Date.now() < deadline) {
    last = await connectorListing(stack, name);
    if (last?.version === version && last.online) return;
    await sleep(250);
  }
  throw new Error(`connector ${name} did not report version ${version} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

export async function connectorListing(stack: FerryStack, name: string): Promise<ConnectorListing | undefined> {
  const run = await stack.relay.cli(['relay', 'connectors', 'list', '--json']);
  if (run.code !== 0) throw new Error(`connectors list failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { connectors: ConnectorListing[] }).connectors.find((c) => c.name === name);
}
