import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { customSearchAttributes } from '../../domain/shared/searchAttributes';

const names = customSearchAttributes.map((key) => key.name).sort();

describe('custom search attributes', () => {
  it('are the ones the bring-up scripts register (dev server and cluster)', () => {
    const script = readFileSync(join(__dirname, '../../scripts/temporal-namespaces.sh'), 'utf8');
    const declared = /SEARCH_ATTRIBUTES=\(([^)]*)\)/.exec(script)?.[1]?.trim().split(/\s+/).sort();
    expect(declared).toEqual(names);
  });

  it('are the ones the production compose stack creates', () => {
    const compose = parse(readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8'));
    const command: string = compose.services['temporal-create-namespace'].environment.SEARCH_ATTRIBUTES;
    expect(command.split(/\s+/).sort()).toEqual(names);
  });
});
