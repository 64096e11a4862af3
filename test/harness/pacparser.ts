// The reference PAC implementation: Debian's python3-pacparser, run with /usr/bin/python3 (the
// `python3` on PATH may be another interpreter without the module).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SYSTEM_PYTHON = '/usr/bin/python3';

const DRIVER = `
import sys, json, pacparser
pac_file, my_ip = sys.argv[1], sys.argv[2]
pacparser.init()
pacparser.enable_microsoft_extensions()
pacparser.setmyip(my_ip)
pacparser.parse_pac_file(pac_file)
args = sys.argv[3:]
out = []
for i in range(0, len(args), 2):
    try:
        out.append({"result": pacparser.find_proxy(args[i], args[i + 1])})
    except Exception as e:
        out.append({"error": str(e)})
pacparser.cleanup()
print(json.dumps(out))
`;

/** Why pacparser cannot run here, or undefined when it can. */
export function pacparserUnavailable(): string | undefined {
  if (!existsSync(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} is missing`;
  return undefined;
}

export type PacparserAnswer = { result: string } | { error: string };

/** Evaluates (url, host) pairs with pacparser; `TZ` pins its local time zone. */
export function pacparserFindProxy(pacFile: string, myIp: string, pairs: { url: string; host: string }[], tz = 'UTC'): Promise<PacparserAnswer[]> {
  return new Promise((resolve, reject) => {
    execFile(
      SYSTEM_PYTHON,
      ['-c', DRIVER, pacFile, myIp, ...pairs.flatMap((p) => [p.url, p.host])],
      { timeout: 20_000, env: { ...process.env, TZ: tz } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`pacparser failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as PacparserAnswer[]);
      },
    );
  });
}
