import { newestWithin, parseFrames } from '../../../activities/compute/kernelLogs';

/** Docker's frame: stream byte, three zeros, the size, the text. */
const frame = (stream: 1 | 2, text: string) => {
  const body = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};

describe('kernel log parsing', () => {
  it('reads the timestamp and the stream of each line, joining a line the engine split across frames', () => {
    const raw = Buffer.concat([
      frame(1, '2026-01-01T00:00:00.123456789Z booted main1\n'),
      frame(2, '2026-01-01T00:00:01.000000000Z warn'),
      frame(2, 'ed\n'),
      frame(1, '2026-01-01T00:00:02.000000000Z last'),
    ]);
    expect(parseFrames(raw)).toEqual([
      { at: '2026-01-01T00:00:00.123456789Z', stream: 'stdout', text: 'booted main1' },
      { at: '2026-01-01T00:00:01.000000000Z', stream: 'stderr', text: 'warned' },
      { at: '2026-01-01T00:00:02.000000000Z', stream: 'stdout', text: 'last' },
    ]);
  });

  it('keeps the newest lines that fit the cap, oldest first', () => {
    const lines = Array.from({ length: 10 }, (_, i) => ({ at: `2026-01-01T00:00:0${i}Z`, stream: 'stdout' as const, text: `line ${i}` }));
    const size = lines[0]!.at.length + 1 + 'line 0'.length;
    expect(newestWithin(lines, 3 * size).map((line) => line.text)).toEqual(['line 7', 'line 8', 'line 9']);
    expect(newestWithin(lines, 100 * size)).toHaveLength(10);
  });
});
