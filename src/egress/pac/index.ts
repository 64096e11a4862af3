// src/egress/pac — public API of the PAC engine (see engine.ts for what this folder owns).
export type { PacEngine, PacEnvironment, PacErrorClass, PacLimits, ParsedPacResult } from './types.js';
export { createPacEngine } from './engine.js';
export { PacError } from './errors.js';
export { parsePacResult, formatRoute } from './result.js';
export { PacDecisionCache, type PacDecisionKey } from './cache.js';
export { PAC_FUNCTION_NAMES } from './builtins.js';
