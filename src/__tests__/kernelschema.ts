/**
 * The kernel schema the server validates with (`sshpyk/resources/ssh-kernel.schema.json`),
 * read from the repository for the form's tests: the one source they render from.
 */
import * as fs from 'fs';
import * as path from 'path';

export const KERNEL_SCHEMA = JSON.parse(
  fs.readFileSync(
    path.join(
      __dirname,
      '..',
      '..',
      'sshpyk',
      'resources',
      'ssh-kernel.schema.json'
    ),
    'utf-8'
  )
);
