// OpenSSL's libcrypto (libssl-dev; rabbitmq-c links it already): the one-shot SHA-256 and HMAC calls only.
#pragma once
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>

// HMAC-SHA256 of data under key into out[32]; 1 on success. EVP_sha256() is a macro-free call, but wrapping it
// here keeps the Swift side to one function.
static inline int darkroom_hmac_sha256(const void *key, int key_len, const unsigned char *data, size_t data_len,
                                       unsigned char *out) {
    unsigned int out_len = 0;
    return HMAC(EVP_sha256(), key, key_len, data, data_len, out, &out_len) != NULL && out_len == 32;
}
