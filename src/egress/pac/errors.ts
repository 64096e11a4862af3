// The one error a PAC evaluation raises: classified once, here, by the engine.
import { FerryError } from '../../shared/errors.js';
import type { PacErrorClass } from './types.js';

const FIX_FOR_PAC_CLASS: Record<PacErrorClass, string> = {
  syntax: 'fix the JavaScript syntax error in the PAC file (check it with `ferry pac eval`)',
  'no-entrypoint': 'the PAC file must define function FindProxyForURL(url, host) (or FindProxyForURLEx)',
  'load-timeout': 'the PAC file runs too long while loading: remove top-level loops',
  exception: 'the PAC function threw: fix the script, or test it with `ferry pac eval --dns ... URL`',
  timeout: 'the PAC function runs too long (an endless loop?): fix the script',
  'resource-limit': 'the PAC script exceeded the memory or stack limit: fix the script',
  'non-string-result': 'FindProxyForURL must return a string such as "PROXY host:port; DIRECT"',
};

/** A PAC script that cannot be loaded or did not answer; `pacClass` says why. */
export class PacError extends FerryError {
  readonly pacClass: PacErrorClass;

  constructor(pacClass: PacErrorClass, message: string, options: { cause?: unknown } = {}) {
    super(`ERR_PAC_${pacClass.toUpperCase().replace(/-/g, '_')}`, message, {
      cause: options.cause,
      fix: FIX_FOR_PAC_CLASS[pacClass],
      // A broken script stays broken until it changes; retrying the same call will not help.
      retryable: false,
      permanent: pacClass === 'syntax' || pacClass === 'no-entrypoint' || pacClass === 'load-timeout',
    });
    this.pacClass = pacClass;
  }
}
