// rabbitmq-c 0.11 keeps its headers flat in /usr/include.
#pragma once
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>

// amqp_login is variadic, which Swift cannot call: fix the SASL PLAIN form here.
static inline amqp_rpc_reply_t darkroom_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                         int channel_max, int frame_max, int heartbeat,
                                                         const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// The same with a client-properties table (connection_name, capabilities); amqp_login_with_properties is variadic too.
static inline amqp_rpc_reply_t darkroom_amqp_login_plain_with_properties(
    amqp_connection_state_t state, const char *vhost, int channel_max, int frame_max, int heartbeat,
    const amqp_table_t *properties, const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// SASL EXTERNAL (the broker takes the user from the client certificate; RabbitMQ's rabbitmq_auth_mechanism_ssl).
// The identity string is sent as the response; RabbitMQ ignores it and uses the certificate.
static inline amqp_rpc_reply_t darkroom_amqp_login_external_with_properties(
    amqp_connection_state_t state, const char *vhost, int channel_max, int frame_max, int heartbeat,
    const amqp_table_t *properties, const char *identity) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_EXTERNAL, identity);
}
