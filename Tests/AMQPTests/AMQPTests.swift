import Testing
@testable import AMQP
