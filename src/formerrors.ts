/**
 * The kernel form's errors: every invalid field the server names (or the
 * form's own check finds) placed next to its field, in words (never a
 * regular expression), and the summary beside the submit button ("2 fields
 * need attention: SSH host alias, Launch timeout (s)").
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import type { ErrorSchema, RJSFValidationError } from '@rjsf/utils';

import { SshpykResponseError } from './request';
import { FIELD_ORDER, fieldMessage, fieldPath } from './formdata';

/**
 * One invalid field and what is wrong with it.
 */
export interface IFieldError {
  field: string;
  message: string;
}

/**
 * The fields of the Add form's short path; every other one is "Advanced".
 */
export const SHORT_FIELDS = ['ssh_host_alias'];

/**
 * What a field's value must look like, for a field whose rule the server
 * states as a regular expression (`'X' must match ^...$`), by the field's
 * `x-sshpyk-check`.
 */
const RULE_WORDS: Record<string, string> = {
  kernel_name:
    "use lowercase letters, digits, '.', '_' and '-' only (no spaces or capitals)",
  alias: 'a Host of your ssh config or a hostname, without spaces or quotes',
  remote_path: "an absolute path, '~' or a path starting with '~/'",
  local_path: "a path that does not start with '-', without shell characters"
};

/**
 * The check of a field by its name, for a schema served without its
 * `x-sshpyk-check` (the OpenAPI document's).
 */
const FIELD_CHECKS: Record<string, string> = {
  kernel_name: 'kernel_name',
  remote_kernel_name: 'kernel_name',
  ssh_host_alias: 'alias',
  ssh_host_alias_local_on_remote: 'alias',
  remote_python_prefix: 'remote_path',
  remote_cwd: 'remote_path',
  remote_sshfs: 'remote_path',
  remote_path: 'remote_path',
  local_path: 'local_path',
  ssh: 'local_path',
  ssh_config: 'local_path'
};

/**
 * Every field error a failed request carries: the server's list when it
 * sends one (`errors: [{field, message}]`), else its one `field`.
 */
export function errorsOf(error: unknown): IFieldError[] {
  if (!(error instanceof SshpykResponseError)) {
    return [];
  }
  if (error.errors.length > 0) {
    return error.errors;
  }
  return error.field ? [{ field: error.field, message: error.message }] : [];
}

/**
 * The schema rule of a field path (`slurm.time`, `mount_local_on_remote[0]
 * .local_path`), or null.
 */
export function ruleOf(
  schema: Record<string, any>,
  field: string
): Record<string, any> | null {
  let rule: any = schema;
  for (const part of fieldPath(field)) {
    if (/^\d+$/.test(part)) {
      rule = rule?.items;
    } else {
      rule = rule?.properties?.[part];
    }
    if (!rule) {
      return null;
    }
  }
  return rule;
}

/**
 * A server message in words, without its field prefix: a failed pattern
 * (`'My K' must match ^(?!...)[a-z0-9._-]+$`) becomes what the value must
 * look like.
 */
export function inWords(
  schema: Record<string, any>,
  field: string,
  message: string,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  const text = fieldMessage(field, message);
  const rule = ruleOf(schema, field);
  const at = text.indexOf(' must match ');
  const regex =
    at >= 0 ||
    (typeof rule?.pattern === 'string' && text.includes(rule.pattern));
  if (!regex) {
    return text;
  }
  const value = at >= 0 ? text.slice(0, at) : '';
  const leaf = fieldPath(field).pop() ?? '';
  const check = rule?.['x-sshpyk-check'] ?? FIELD_CHECKS[leaf] ?? '';
  const words =
    RULE_WORDS[check] ??
    rule?.description ??
    trans.__('a value of another form');
  return value
    ? trans.__('%1 is not valid: %2', value, words)
    : trans.__('Not valid: %1', words);
}

/**
 * The name of a field as the form shows it: its title, under its parent's
 * ("Slurm: Time limit", "SSHFS mounts 1: Local directory").
 */
export function fieldLabel(schema: Record<string, any>, field: string): string {
  const parts = fieldPath(field);
  const words: string[] = [];
  let rule: any = schema;
  for (const part of parts) {
    if (/^\d+$/.test(part)) {
      rule = rule?.items;
      if (words.length > 0) {
        words[words.length - 1] += ` ${Number(part) + 1}`;
      }
      continue;
    }
    rule = rule?.properties?.[part];
    words.push(rule?.title ?? part);
  }
  return words.join(': ');
}

/**
 * An rjsf error schema holding every message at its field; the messages for
 * fields the schema does not have are returned apart (shown on top).
 */
export function errorSchemaOf(
  schema: Record<string, any>,
  errors: readonly IFieldError[],
  trans?: TranslationBundle
): { errorSchema: ErrorSchema; placed: IFieldError[]; unplaced: string[] } {
  const errorSchema: any = {};
  const placed: IFieldError[] = [];
  const unplaced: string[] = [];
  for (const { field, message } of errors) {
    const path = fieldPath(field);
    if (path.length === 0 || !(path[0] in (schema.properties ?? {}))) {
      unplaced.push(message);
      continue;
    }
    const words = inWords(schema, field, message, trans);
    let node = errorSchema;
    for (const key of path) {
      node = node[key] ??= {};
    }
    node.__errors = [...(node.__errors ?? []), words];
    placed.push({ field, message: words });
  }
  return { errorSchema, placed, unplaced };
}

/**
 * rjsf's own errors (`property` `.slurm.time`) as field errors.
 */
export function clientErrors(errors: RJSFValidationError[]): IFieldError[] {
  return errors.map(e => ({
    field: (e.property ?? '').replace(/^\./, ''),
    message: e.message ?? ''
  }));
}

/**
 * Whether any of these fields lies under "Advanced".
 */
export function inAdvanced(errors: readonly IFieldError[]): boolean {
  return errors.some(e => !SHORT_FIELDS.includes(fieldPath(e.field)[0]));
}

/**
 * The top-level fields in the order the form shows them: the short path's,
 * then `FIELD_ORDER`'s, then the schema's.
 */
export function formOrder(schema: Record<string, any>): string[] {
  const keys = Object.keys(schema.properties ?? {});
  const named = [...SHORT_FIELDS, ...FIELD_ORDER].filter(k => keys.includes(k));
  return [...new Set([...named, ...keys])];
}

/**
 * The summary beside the submit button, each field named once, in the order
 * the form shows them.
 */
export function summaryWords(
  schema: Record<string, any>,
  errors: readonly IFieldError[],
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  const order = formOrder(schema);
  const rank = (e: IFieldError) => {
    const at = order.indexOf(fieldPath(e.field)[0]);
    return at < 0 ? order.length : at;
  };
  const sorted = [...errors].sort((a, b) => rank(a) - rank(b));
  const labels = [...new Set(sorted.map(e => fieldLabel(schema, e.field)))];
  return trans._n(
    '%1 field needs attention: %2',
    '%1 fields need attention: %2',
    labels.length,
    labels.join(', ')
  );
}
