import { TranslationBundle } from '@jupyterlab/translation';

import { KernelFormData } from '../formdata';
import { ISshpykModel } from '../tokens';

/**
 * What the custom form widgets need beyond their own value: the other fields
 * (the host list depends on `ssh_config`, discovery on host and prefix) and a
 * way to fill in fields the user left empty.
 */
export interface IFormContext {
  /**
   * Where the pickers ask the server (hosts, discovery): the widgets only render.
   */
  model: Pick<ISshpykModel, 'listHosts' | 'discoverKernelspecs'>;
  formData: KernelFormData;
  fillEmpty: (values: KernelFormData) => void;
  defaultFormData: KernelFormData;
  trans: TranslationBundle;
}
