/**
 * The Slurm plugin: the notices of Slurm kernels (a warning before a job's
 * time limit, why a job ended), from the model's tunnel status.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { ISshpykModel } from '../tokens';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the notices follow the status from the start: a warning is due at its time
import { SlurmNotices } from './notices';

export const slurmPlugin: JupyterFrontEndPlugin<void> = {
  id: 'sshpyk:slurm',
  description:
    "Slurm kernels: warns before a job's time limit ends it, and says why a job ended.",
  autoStart: true,
  requires: [ISshpykModel],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    model: ISshpykModel,
    translator: ITranslator | null
  ): void => {
    new SlurmNotices({
      model,
      trans: (translator ?? nullTranslator).load('sshpyk')
    });
  }
};
