import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly',
        setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly',
        setImmediate: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly',
        TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', queueMicrotask: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // The live page's own script runs in the browser (uPlot is loaded before it).
    files: ['assets/ui/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', EventSource: 'readonly', uPlot: 'readonly', fetch: 'readonly' },
    },
  },
  {
    // The server is shared infrastructure: it must never depend on worker or client code.
    files: ['src/signaling/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/worker/**', '**/client/**', '**/transport/**', '**/cli/**'] }],
    },
  },
  {
    // Data flows one way: cli -> client/worker -> transport -> protocol.
    files: ['src/transport/**', 'src/protocol/**', 'src/storage/**', 'src/config/**', 'src/slp/**', 'src/content/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/worker/**', '**/client/**', '**/cli/**', '**/signaling/**'] }],
    },
  },
  {
    // Files by content sit below transport: no networking.
    files: ['src/content/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/worker/**', '**/client/**', '**/cli/**', '**/signaling/**', '**/transport/**'] }],
    },
  },
);
