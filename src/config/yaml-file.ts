// src/config — configuration schemas, file loaders and provenance. Imports src/shared only.
//
// Loads a YAML file and validates it with a zod schema. Every failure names the file, the line
// and the fix, because an operator reads these errors at 3 a.m. with only the message to go on.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../shared/errors.js';

export interface LoadedYaml<T> {
  value: T;
  file: string;
  /** Line of a dotted key path (e.g. "proxy.address"), for provenance. */
  lineOf(path: (string | number)[]): number | undefined;
}

/** DESIGN.md: a configuration file whose content is XML is a .NET-style .config file, not YAML. */
export function isXmlText(text: string): boolean {
  return text.replace(/^\uFEFF/, '').trimStart().startsWith('<');
}

export function isXmlFile(file: string): boolean {
  try {
    return isXmlText(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

export interface YamlFileOptions {
  /** What to do when the file is XML (a .NET .config) where this one must be YAML. */
  xmlFix?: string;
}

export function parseYamlText<S extends z.ZodTypeAny>(text: string, file: string, schema: S, options: YamlFileOptions = {}): LoadedYaml<z.output<S>> {
  if (isXmlText(text)) {
    throw new ConfigError('the file is XML (a .NET .config file), where a YAML file is expected', {
      file, line: 1, fix: options.xmlFix ?? 'write the settings as YAML ("key: value" lines)',
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new ConfigError(`invalid YAML: ${first.message.split('\n')[0]}`, {
      file, line: lineAt(first.pos[0]), fix: 'fix the YAML syntax at that line (indentation, a missing colon or quote)',
    });
  }
  const lineOf = (path: (string | number)[]): number | undefined => {
    for (let depth = path.length; depth > 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) {
        // For a scalar value, point at its key's line when possible (same line in block style).
        return lineAt(node.range[0]);
      }
    }
    return undefined;
  };
  const raw = doc.contents === null ? {} : doc.toJS();
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new ConfigError('the file must be a YAML mapping (key: value lines)', { file, line: 1, fix: 'write the settings as top-level "key: value" lines' });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || '(top level)';
    const unknownKeys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
    const path = unknownKeys.length ? [...issue.path, unknownKeys[0]!] : issue.path;
    throw new ConfigError(`${where}: ${issue.message}`, {
      file, line: lineOf(path),
      fix: unknownKeys.length ? `remove or correct the key "${unknownKeys[0]}" (keys are case-sensitive)` : `correct the value of "${where}"`,
    });
  }
  return { value: parsed.data, file, lineOf };
}

export function loadYamlFile<S extends z.ZodTypeAny>(file: string, schema: S, options: YamlFileOptions = {}): LoadedYaml<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the configuration file: ${(error as Error).message}`, { file, fix: 'check the path given with --config and its permissions' });
  }
  return parseYamlText(text, file, schema, options);
}
