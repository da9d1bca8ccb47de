/** A JSON object as templates and overrides hold them. */
export type JsonObject = { [key: string]: unknown };

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A template's parameters with a request's `overrides` on top: objects merge key by key (so
 * `{"resources": {"cpu": "8"}}` keeps the template's memory), arrays and scalars replace, and
 * `null` removes the key (back to the default). Neither input is changed.
 */
export function mergeTemplate(params: JsonObject, overrides: JsonObject): JsonObject {
  const merged: JsonObject = { ...params };
  for (const [key, value] of Object.entries(overrides)) {
    // JSON.parse makes "__proto__" an own key; assigning it would swap the object's prototype.
    if (key === '__proto__') continue;
    if (value === null) delete merged[key];
    else if (isPlainObject(value) && isPlainObject(merged[key])) merged[key] = mergeTemplate(merged[key], value);
    else if (isPlainObject(value)) merged[key] = mergeTemplate({}, value);
    else merged[key] = value;
  }
  return merged;
}
