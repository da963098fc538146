// AMQP: see the module's other files.
import CRabbitMQ
