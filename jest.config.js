const jestJupyterLab = require('@jupyterlab/testutils/lib/jest-config');

// These ship untranspiled ES modules, so babel must transform them too.
const esModules = [
  '@codemirror',
  '@marijn',
  '@microsoft',
  'color',
  'marked',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@microsoft/fast',
  '@jupyterlab/',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  collectCoverageFrom: [
    'src/**/*.{ts,tsx}',
    '!src/**/*.d.ts',
    '!src/**/.ipynb_checkpoints/*'
  ],
  coverageReporters: ['lcov', 'text'],
  // package.json files of the venvs and of the built labextension are not modules of ours
  // (jest warned of "haste module naming collisions" in every run)
  modulePathIgnorePatterns: [
    '<rootDir>/\\.venv',
    '<rootDir>/sshpyk/labextension',
    '<rootDir>/ui-tests'
  ],
  // The base config adds jest-junit, which drops a junit.xml in the repo root.
  reporters: ['default'],
  testRegex: 'src/.*/.*.spec.ts[x]?$',
  transform: {
    ...baseConfig.transform,
    // One tsconfig for the build and the tests.
    '^.+\\.tsx?$': ['ts-jest/legacy', { tsconfig: './tsconfig.json' }]
  },
  // One pattern only: a file is left untransformed when any pattern matches,
  // so appending to the base list could never add packages to it.
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
