import { describe, expect, it } from 'vitest';
import {
  dayPath, keyDay, keyInRange, keyTime, lastSegment, narrowPrefix, pastRange, placePrefix, rangeStart, serviceDir,
} from '../../src/sources/s3-layout.js';

const R = 'AWSLogs/111122223333/CloudTrail/us-east-1/';
const key = (day: string, time: string): string => `${R}2024/03/${day}/111122223333_CloudTrail_us-east-1_202403${day}T${time}Z_0A1B2C3D4E5F6A7B.json.gz`;
const t = (iso: string): Date => new Date(iso);

describe('placePrefix', () => {
  it.each([
    ['', { base: 'AWSLogs/', partial: '', level: 'owner' }],
    ['AWSLogs', { base: 'AWSLogs/', partial: '', level: 'owner' }],
    ['AWSLogs/', { base: 'AWSLogs/', partial: '', level: 'owner' }],
    ['AWSLogs/1111', { base: 'AWSLogs/', partial: '1111', level: 'owner' }],
    ['my-trails', { base: 'my-trails/AWSLogs/', partial: '', level: 'owner' }],
    ['my-trails/AWSLogs/', { base: 'my-trails/AWSLogs/', partial: '', level: 'owner' }],
    ['AWSLogs/o-exampleorg1/', { base: 'AWSLogs/o-exampleorg1/', partial: '', level: 'account' }],
    ['AWSLogs/111122223333/', { base: 'AWSLogs/111122223333/', partial: '', level: 'service' }],
    ['AWSLogs/o-exampleorg1/111122223333/Cloud', { base: 'AWSLogs/o-exampleorg1/111122223333/', partial: 'Cloud', level: 'service' }],
    ['AWSLogs/111122223333/CloudTrail/', { base: 'AWSLogs/111122223333/CloudTrail/', partial: '', level: 'region' }],
    ['AWSLogs/111122223333/CloudTrail/eu-', { base: 'AWSLogs/111122223333/CloudTrail/', partial: 'eu-', level: 'region' }],
    [R, { base: R, partial: '', level: 'leaf', region: R }],
    [`${R}2024/03/0`, { base: `${R}2024/03/`, partial: '0', level: 'leaf', region: R }],
    ['AWSLogs/o-exampleorg1/111122223333/vpcflowlogs/eu-west-1/2024/', {
      base: 'AWSLogs/o-exampleorg1/111122223333/vpcflowlogs/eu-west-1/2024/', partial: '', level: 'leaf',
      region: 'AWSLogs/o-exampleorg1/111122223333/vpcflowlogs/eu-west-1/',
    }],
  ])('%j', (prefix, place) => {
    expect(placePrefix(prefix)).toEqual(place);
  });

  it('names the last segment of a directory prefix', () => {
    expect(lastSegment('AWSLogs/o-exampleorg1/')).toBe('o-exampleorg1');
    expect(lastSegment('AWSLogs/')).toBe('AWSLogs');
  });
});

describe('Hive-compatible VPC Flow Logs prefixes', () => {
  const H = 'AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=us-east-1/';
  const hiveKey = (day: string, hour: string): string => `${H}year=2024/month=03/day=${day}/hour=${hour}/111122223333_vpcflowlogs_us-east-1_fl-1_202403${day}T${hour}05Z_hash.log.gz`;

  it.each([
    ['AWSLogs/aws-account-id=111122223333/', { base: 'AWSLogs/aws-account-id=111122223333/', partial: '', level: 'service' }],
    ['AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/', { base: 'AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/', partial: '', level: 'region' }],
    [H, { base: H, partial: '', level: 'leaf', region: H }],
    [`${H}year=2024/month=03/`, { base: `${H}year=2024/month=03/`, partial: '', level: 'leaf', region: H }],
  ])('places %j', (prefix, place) => {
    expect(placePrefix(prefix)).toEqual(place);
  });

  it('finds the service directory under an account directory of either kind', () => {
    expect(serviceDir('vpcflow', 'AWSLogs/aws-account-id=111122223333/')).toBe('aws-service=vpcflowlogs');
    expect(serviceDir('vpcflow', 'AWSLogs/111122223333/')).toBe('vpcflowlogs');
    expect(serviceDir('cloudtrail', 'AWSLogs/o-exampleorg1/111122223333/')).toBe('CloudTrail');
  });

  it('reads days from year=/month=/day= and turns a window into a key range', () => {
    expect(keyDay(hiveKey('02', '13'), H)).toBe(Date.parse('2024-03-02T00:00:00Z'));
    expect(keyDay(`${H}2024/03/02/x.log.gz`, H), 'plain dates are not Hive dates').toBeUndefined();
    expect(keyDay(`${R}year=2024/month=03/day=02/x`, R), 'and the other way round').toBeUndefined();
    expect(dayPath(t('2024-03-09T23:59:59Z'), H)).toBe('year=2024/month=03/day=09');
    const start = rangeStart(H, t('2024-03-02T06:00:00Z'));
    expect(start).toBe(`${H}year=2024/month=03/day=02`);
    expect(hiveKey('02', '00') > start && hiveKey('01', '23') < start).toBe(true);
    const to = t('2024-03-03T00:00:00Z');
    expect(pastRange(hiveKey('02', '23'), H, to)).toBe(false);
    expect(pastRange(hiveKey('03', '00'), H, to)).toBe(true);
    expect(pastRange(`${H}zzz/other`, H, to)).toBe(true);
    expect(pastRange(`${H}aaa/other`, H, to)).toBe(false);
    expect(keyInRange(hiveKey('02', '13'), H, t('2024-03-02T12:00:00Z'), to)).toBe(true);
    expect(keyInRange(`${H}year=2024/month=03/day=02/other.log.gz`, H, t('2024-03-02T12:00:00Z'), to)).toBe(true);
    expect(keyInRange(`${H}year=2024/month=03/day=01/other.log.gz`, H, t('2024-03-02T12:00:00Z'), to)).toBe(false);
  });
});

describe('narrowPrefix', () => {
  it.each([
    ['AWSLogs/', undefined, 'AWSLogs/'],
    ['AWSLogs/', 'AWSLogs/111122223333/', 'AWSLogs/111122223333/'],
    ['AWSLogs/111122223333/', 'AWSLogs/', 'AWSLogs/111122223333/'],
    ['', 'logs/2024/', 'logs/2024/'],
    ['AWSLogs/111122223333/', 'AWSLogs/444455556666/', undefined],
  ])('%j narrowed by %j', (configured, scoped, want) => {
    expect(narrowPrefix(configured, scoped)).toBe(want);
  });
});

describe('dates in keys', () => {
  it('reads the day a key is filed under and the time in its name', () => {
    expect(keyDay(key('02', '0105'), R)).toBe(Date.parse('2024-03-02T00:00:00Z'));
    expect(keyTime(key('02', '0105'))).toBe(Date.parse('2024-03-02T01:05:00Z'));
    expect(keyTime(`${R}2024/03/02/123_vpcflowlogs_us-east-1_fl-1234abcd_20240302T2355Z_hash.log.gz`)).toBe(Date.parse('2024-03-02T23:55:00Z'));
    expect(keyDay(`${R}readme.txt`, R)).toBeUndefined();
    expect(keyTime(`${R}2024/03/02/notes.txt`)).toBeUndefined();
    expect(dayPath(t('2024-03-09T23:59:59Z'))).toBe('2024/03/09');
  });

  it.each([
    // the time in the name decides, [from, to)
    [key('02', '0000'), '2024-03-02', '2024-03-03', true],
    [key('02', '2355'), '2024-03-02', '2024-03-03', true],
    [key('03', '0000'), '2024-03-02', '2024-03-03', false],
    [key('01', '2359'), '2024-03-02', '2024-03-03', false],
    [key('02', '1200'), '2024-03-02T12:00:00Z', undefined, true],
    [key('02', '1155'), '2024-03-02T12:00:00Z', undefined, false],
    [key('02', '1155'), undefined, '2024-03-02T12:00:00Z', true],
    // without a time in the name, the day it is filed under, by overlap
    [`${R}2024/03/02/other.json.gz`, '2024-03-02T12:00:00Z', '2024-03-02T13:00:00Z', true],
    [`${R}2024/03/02/other.json.gz`, '2024-03-03', undefined, false],
    [`${R}notes.txt`, '2024-03-01', undefined, false],
  ])('%s in [%s, %s): %s', (k, from, to, want) => {
    expect(keyInRange(k, R, from ? t(from) : undefined, to ? t(to) : undefined)).toBe(want);
  });

  it('turns a window into a key range: StartAfter before its first day, a stop after its last', () => {
    const start = rangeStart(R, t('2024-03-02T06:00:00Z'));
    expect(start).toBe(`${R}2024/03/02`);
    expect(key('02', '0000') > start && key('01', '2355') < start).toBe(true);
    const to = t('2024-03-04T00:00:00Z');
    expect(pastRange(key('03', '2355'), R, to)).toBe(false);
    expect(pastRange(key('04', '0000'), R, to)).toBe(true);
    expect(pastRange(key('04', '0000'), R, t('2024-03-04T00:00:01Z'))).toBe(false);
    expect(pastRange(`${R}zzz/other`, R, to)).toBe(true);
  });
});
