/* Test helper: writes a corrupted copy of a safetensors file.
 *   st_edit IN OUT rename TENSOR NEWNAME   rename a header entry
 *   st_edit IN OUT dtype TENSOR DTYPE      change an entry's dtype string
 *   st_edit IN OUT offsets TENSOR          point an entry's data past the end of the file
 *   st_edit IN OUT headerlen               header length field larger than the file
 *   st_edit IN OUT nan TENSOR INDEX        element INDEX of the tensor's data becomes NaN
 *   st_edit IN OUT inf TENSOR INDEX        ... becomes +Inf
 * The data region is copied unchanged. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *msg) {
  fprintf(stderr, "st_edit: %s\n", msg);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 4) return die("usage: st_edit IN OUT MODE [TENSOR [VALUE]]");
  FILE *f = fopen(argv[1], "rb");
  if (!f) return die("cannot open input");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)size);
  if (fread(buf, 1, (size_t)size, f) != (size_t)size) return die("short read");
  fclose(f);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
  if (hlen > (uint64_t)size - 8) return die("input is not a safetensors file");
  unsigned char *data = buf + 8 + hlen;
  size_t dlen = (size_t)size - 8 - hlen;
  cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, hlen);
  if (!h) return die("bad header");
  const char *mode = argv[3];
  if (strcmp(mode, "headerlen")) {
    if (argc < 5) return die("missing TENSOR");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(h, argv[4]);
    if (!e) return die("no such tensor");
    if (!strcmp(mode, "rename") && argc == 6) {
      cJSON *copy = cJSON_Duplicate(e, 1);
      cJSON_DeleteItemFromObjectCaseSensitive(h, argv[4]);
      cJSON_AddItemToObject(h, argv[5], copy);
    } else if (!strcmp(mode, "dtype") && argc == 6) {
      cJSON_ReplaceItemInObjectCaseSensitive(e, "dtype", cJSON_CreateString(argv[5]));
    } else if (!strcmp(mode, "offsets")) {
      cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
      double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
      cJSON_ReplaceItemInArray(off, 0, cJSON_CreateNumber(b + (double)dlen));
      cJSON_ReplaceItemInArray(off, 1, cJSON_CreateNumber(en + (double)dlen));
    } else if ((!strcmp(mode, "nan") || !strcmp(mode, "inf")) && argc == 6) {
      const char *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring;
      size_t at = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), 0)->valuedouble;
      size_t i = (size_t)strtoull(argv[5], NULL, 10);
      int nan = !strcmp(mode, "nan");
      if (!strcmp(dt, "F32")) {
        uint32_t v = nan ? 0x7fc00000u : 0x7f800000u;
        memcpy(data + at + 4 * i, &v, 4);
      } else if (!strcmp(dt, "F16") || !strcmp(dt, "BF16")) {
        uint16_t v = !strcmp(dt, "F16") ? (nan ? 0x7e00 : 0x7c00) : (nan ? 0x7fc0 : 0x7f80);
        memcpy(data + at + 2 * i, &v, 2);
      } else {
        return die("nan/inf: not a float tensor");
      }
    } else {
      return die("unknown mode or missing value");
    }
  }
  char *text = cJSON_PrintUnformatted(h);
  uint64_t n = strlen(text);
  uint64_t field = !strcmp(mode, "headerlen") ? (uint64_t)size * 4 : n;
  FILE *o = fopen(argv[2], "wb");
  if (!o) return die("cannot open output");
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(field >> (8 * i));
  fwrite(le, 1, 8, o);
  fwrite(text, 1, n, o);
  fwrite(data, 1, dlen, o);
  fclose(o);
  free(text);
  cJSON_Delete(h);
  free(buf);
  return 0;
}
