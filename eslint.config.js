// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-check/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', Buffer: 'readonly', performance: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', NodeJS: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
  {
    // The CommonJS entry is require()'s own side of the package: it can only require.
    files: ['src/index.cts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // machines/ is pure logic: it must never reach a backend.
    files: ['src/machines/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/backends/**', '**/backends/*'], message: 'machines/ never imports backends/' }] }],
    },
  },
  {
    // backends/ never imports xstate.
    files: ['src/backends/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'xstate', message: 'backends/ never imports xstate' }] }] },
  },
);
