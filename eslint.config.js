// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-check/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname } },
  },
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        NodeJS: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
      // A backend's async method turns a synchronous throw (bad input, a closed queue) into a
      // rejection, which the BaseQueue contract asks for: `async` without `await` is the point.
      '@typescript-eslint/require-await': 'off',
      // The two this rule exists for, named so they stay on whatever the preset does.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
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
  {
    // Tests reach into internals (snapshots, private fields, spies) on purpose: the unsafe-any
    // family and unbound-method (expect(obj.method)) would flag the looking, not a bug. The
    // promise rules stay on: an un-awaited assertion is a test that cannot fail.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Tests throw and reject with non-Errors on purpose (what taskmill does with them is tested),
      // and print values of loose types in their failure messages.
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
);
