import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js'] })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // The registry domain stands alone: it knows nothing of mirrors, builds, events or the gateway.
    files: ['src/registry/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/mirror/**', '**/builder/**', '**/triggers/**', '**/events/**', '**/gateway/**'] },
      ],
    },
  },
);
