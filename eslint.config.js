// Lint rules: typescript-eslint's recommended set, plus the import boundaries of STYLE.md
// (relay never imports connector, nothing imports cli, only egress opens sockets).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const boundary = (from, patterns, message) => ({
  files: [from],
  rules: { 'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }] },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  boundary('src/relay/**', ['**/connector/**', '**/cli/**'], 'the relay never imports the connector or the CLI'),
  boundary('src/connector/**', ['**/relay/**', '**/cli/**'], 'the connector never imports the relay or the CLI'),
  boundary('src/shared/**', ['../*', '!./*'], 'shared imports nothing internal'),
  boundary('src/egress/**', ['**/relay/**', '**/connector/**', '**/cli/**', '**/doctor/**', '**/updater/**'], 'egress is a leaf: shared and config only'),
  boundary('src/config/**', ['**/relay/**', '**/connector/**', '**/cli/**', '**/egress/**'], 'config imports shared only'),
);
