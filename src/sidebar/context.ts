import { TranslationBundle } from '@jupyterlab/translation';

import { KernelFormData } from '../formdata';
import { ISshpykModel } from '../tokens';
import type { IShortPathState } from './shortpath';

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
  /**
   * The short path and "Advanced" (the root template's); absent: every field
   * in one column.
   */
  layout?: IFormLayout;
  formData: KernelFormData;
  fillEmpty: (values: KernelFormData) => void;
  defaultFormData: KernelFormData;
  trans: TranslationBundle;
}

/**
 * What the root template needs from the form: plain data, and functions that
 * keep their identity (rjsf compares its context deeply, functions as equal).
 */
export interface IFormLayout {
  advancedOpen: boolean;
  setAdvancedOpen: (open: boolean) => void;
  /** absent when editing: the short path adds kernels */
  shortPath?: {
    state: IShortPathState;
    check: () => void;
    toggle: (prefix: string, on: boolean) => void;
  };
}
